package dev.mod.convert;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mod.ModException;
import dev.mod.StrictJson;
import dev.mod.io.SafetensorsFile;
import dev.mod.io.TextFile;
import dev.mod.model.DType;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.RouterWeighting;
import dev.mod.model.Tensor;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * A Hugging Face Llama checkpoint (config.json and model.safetensors, or shards listed by
 * model.safetensors.index.json, with HF's tensor names) as a dense mod model of the same computation. The one change
 * in the weights: HF stores q_proj and k_proj permuted for its half-split rotary form (rotate_half pairs dimension i of
 * a head with i + dh/2), and this model rotates adjacent pairs (2i, 2i + 1), so each head's rows are put back in
 * adjacent-pair order. Tied embeddings (no lm_head) give the output the embedding matrix. Matrices keep the type
 * they are stored in; norms become F32. What the model cannot compute (biases, rope scaling, another activation, a
 * head size other than hidden / heads) is refused in one line rather than imported wrong.
 */
public final class HfImport implements AutoCloseable {
    private final Path dir;
    private final List<SafetensorsFile> files = new ArrayList<>();
    private final Map<String, SafetensorsFile> where = new LinkedHashMap<>();
    private final ModelConfig config;
    private final boolean tied;

    private HfImport(Path dir) {
        this.dir = dir;
        JsonNode c = readJson(dir.resolve("config.json"));
        String type = c.path("model_type").asText("");
        if (!type.equals("llama")) {
            throw new ModException(dir + "/config.json: model_type \"" + type + "\"; only Llama checkpoints (\"llama\") import");
        }
        refuseIfSet(c, "rope_scaling", "rope scaling");
        double theta = ropeTheta(c);
        refuseIfTrue(c, "attention_bias", "attention biases");
        refuseIfTrue(c, "mlp_bias", "MLP biases");
        String act = c.path("hidden_act").asText("silu");
        if (!act.equals("silu")) {
            throw new ModException(dir + "/config.json: hidden_act \"" + act + "\"; this model's MLP is SwiGLU (silu)");
        }
        int dim = required(c, "hidden_size");
        int heads = required(c, "num_attention_heads");
        if (c.has("head_dim") && !c.get("head_dim").isNull() && c.get("head_dim").asInt() * heads != dim) {
            throw new ModException(dir + "/config.json: head_dim " + c.get("head_dim").asInt() + " is not hidden_size / "
                    + "num_attention_heads = " + dim / heads + "; this model's heads split the hidden size");
        }
        int layers = required(c, "num_hidden_layers");
        config = new ModelConfig(required(c, "vocab_size"), dim, layers, heads,
                c.hasNonNull("num_key_value_heads") ? c.get("num_key_value_heads").asInt() : heads, required(c, "intermediate_size"),
                c.path("rms_norm_eps").asDouble(1e-6), theta, required(c, "max_position_embeddings"),
                1.0, List.of(), RouterWeighting.RAW);
        tied = c.path("tie_word_embeddings").asBoolean(false);
        openWeights();
    }

    /** The checkpoint in DIR as a dense mod model, valid while the returned importer is open. */
    public static HfImport open(Path dir) {
        if (!Files.isDirectory(dir)) {
            throw new ModException(dir + " is not a folder (a Hugging Face checkpoint: config.json and model.safetensors)");
        }
        return new HfImport(dir);
    }

    public Model model() {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        tensors.put("tok_embeddings.weight", tensor("model.embed_tokens.weight"));
        int dh = config.headDim();
        for (int i = 0; i < config.nLayers(); i++) {
            String hf = "model.layers." + i + ".";
            String to = "layers." + i + ".";
            tensors.put(to + "attention_norm.weight", norm(hf + "input_layernorm.weight"));
            tensors.put(to + "attention.wq.weight", adjacentPairs(tensor(hf + "self_attn.q_proj.weight"), config.nHeads(), dh));
            tensors.put(to + "attention.wk.weight", adjacentPairs(tensor(hf + "self_attn.k_proj.weight"), config.nKvHeads(), dh));
            tensors.put(to + "attention.wv.weight", tensor(hf + "self_attn.v_proj.weight"));
            tensors.put(to + "attention.wo.weight", tensor(hf + "self_attn.o_proj.weight"));
            tensors.put(to + "ffn_norm.weight", norm(hf + "post_attention_layernorm.weight"));
            tensors.put(to + "feed_forward.w1.weight", tensor(hf + "mlp.gate_proj.weight"));
            tensors.put(to + "feed_forward.w3.weight", tensor(hf + "mlp.up_proj.weight"));
            tensors.put(to + "feed_forward.w2.weight", tensor(hf + "mlp.down_proj.weight"));
        }
        tensors.put("norm.weight", norm("model.norm.weight"));
        if (where.containsKey("lm_head.weight")) {
            tensors.put("output.weight", tensor("lm_head.weight"));
        } else if (tied) {
            tensors.put("output.weight", tensor("model.embed_tokens.weight"));
        } else {
            throw new ModException(dir + ": no lm_head.weight, and config.json does not tie the embeddings");
        }
        TreeSet<String> unused = new TreeSet<>(where.keySet());
        unused.removeAll(List.of("lm_head.weight", "model.embed_tokens.weight", "model.norm.weight"));
        unused.removeIf(n -> n.matches("model\\.layers\\.\\d+\\.(input_layernorm|post_attention_layernorm|self_attn\\.[qkvo]_proj"
                + "|mlp\\.(gate|up|down)_proj)\\.weight") && Integer.parseInt(n.split("\\.")[2]) < config.nLayers());
        unused.removeIf(n -> n.matches("model\\.layers\\.\\d+\\.self_attn\\.rotary_emb\\.inv_freq"));
        if (!unused.isEmpty()) {
            throw new ModException(dir + ": tensors this model has no place for, such as " + unused.first() + " (" + unused.size()
                    + " in all)");
        }
        Map<String, Tensor> named = new LinkedHashMap<>();
        tensors.forEach((name, t) -> named.put(name, named(name, t)));
        return new Model(config, named, null, null, "the Hugging Face checkpoint " + dir.getFileName() + "'s tokenizer");
    }

    /**
     * q or k [heads * dh, d] from HF's half-split order to adjacent pairs: within a head, HF row p * dh/2 + j (p = 0, 1:
     * the pair's first or second element, j < dh/2) becomes row 2j + p. The inverse of the permutation HF's conversion
     * script applies to Meta's weights.
     */
    static Tensor adjacentPairs(Tensor w, int heads, int dh) {
        long d = w.dim(1);
        if (w.dim(0) != (long) heads * dh) {
            throw new ModException(w.name() + ": " + w.dim(0) + " rows, expected heads x head size = " + heads * dh);
        }
        long rowBytes = d * w.dtype().bytes();
        MemorySegment out = MemorySegment.ofArray(new byte[Math.toIntExact(w.data().byteSize())]);
        for (int h = 0; h < heads; h++) {
            for (int j = 0; j < dh / 2; j++) {
                for (int p = 0; p < 2; p++) {
                    long from = (long) h * dh + (long) p * (dh / 2) + j;
                    long to = (long) h * dh + 2L * j + p;
                    MemorySegment.copy(w.data(), from * rowBytes, out, to * rowBytes, rowBytes);
                }
            }
        }
        return new Tensor(w.name(), w.dtype(), w.shape(), out);
    }

    public ModelConfig config() {
        return config;
    }

    private Tensor norm(String name) {
        return tensor(name).as(DType.F32);
    }

    /** A tensor under this model's name: a model file names each tensor by the name it carries. */
    private static Tensor named(String name, Tensor t) {
        return new Tensor(name, t.dtype(), t.shape(), t.data());
    }

    private Tensor tensor(String name) {
        SafetensorsFile f = where.get(name);
        if (f == null) {
            throw new ModException(dir + ": the checkpoint has no tensor " + name);
        }
        Tensor t = f.tensor(name);
        if (!t.dtype().isFloat()) {
            throw new ModException(dir + ": tensor " + name + " is " + t.dtype() + ", not a float type");
        }
        return t;
    }

    private void openWeights() {
        Path single = dir.resolve("model.safetensors");
        Path index = dir.resolve("model.safetensors.index.json");
        try {
            if (Files.exists(index)) {
                JsonNode map = readJson(index).path("weight_map");
                if (!map.isObject()) {
                    throw new ModException(index + ": no \"weight_map\"");
                }
                Map<String, SafetensorsFile> shards = new LinkedHashMap<>();
                for (Iterator<Map.Entry<String, JsonNode>> it = map.properties().iterator(); it.hasNext(); ) {
                    Map.Entry<String, JsonNode> e = it.next();
                    String shard = e.getValue().asText();
                    if (shard.contains("/") || shard.contains("\\") || shard.startsWith(".")) {
                        throw new ModException(index + ": shard \"" + shard + "\" is not a file name in the folder");
                    }
                    SafetensorsFile f = shards.computeIfAbsent(shard, s -> add(SafetensorsFile.open(dir.resolve(s))));
                    if (!f.tensors().containsKey(e.getKey())) {
                        throw new ModException(index + ": " + shard + " has no tensor " + e.getKey());
                    }
                    where.put(e.getKey(), f);
                }
            } else if (Files.exists(single)) {
                SafetensorsFile f = add(SafetensorsFile.open(single));
                f.tensors().keySet().forEach(name -> where.put(name, f));
            } else {
                throw new ModException(dir + ": neither model.safetensors nor model.safetensors.index.json");
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    private SafetensorsFile add(SafetensorsFile f) {
        files.add(f);
        return f;
    }

    private static JsonNode readJson(Path file) {
        try {
            return StrictJson.mapper().readTree(TextFile.read(file));
        } catch (IOException e) {
            throw new ModException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * RoPE's base: "rope_theta" (transformers 4), or "rope_parameters": {"rope_type": "default", "rope_theta": ...}
     * (transformers 5); LlamaConfig's default 10000 where neither says. Any rope type but the default is refused.
     */
    private double ropeTheta(JsonNode c) {
        JsonNode parameters = c.path("rope_parameters");
        if (parameters.isObject()) {
            String type = parameters.path("rope_type").asText("default");
            if (!type.equals("default")) {
                throw new ModException(dir + "/config.json: rope_parameters.rope_type \"" + type + "\"; this model computes the "
                        + "default RoPE only");
            }
            if (parameters.has("rope_theta") && c.has("rope_theta") && parameters.get("rope_theta").asDouble() != c.get("rope_theta").asDouble()) {
                throw new ModException(dir + "/config.json: rope_theta and rope_parameters.rope_theta disagree");
            }
            if (parameters.has("rope_theta")) {
                return positive(parameters.get("rope_theta"), "rope_parameters.rope_theta");
            }
        }
        return c.has("rope_theta") ? positive(c.get("rope_theta"), "rope_theta") : 10000.0;
    }

    private double positive(JsonNode v, String key) {
        if (!v.isNumber() || !(v.asDouble() > 0)) {
            throw new ModException(dir + "/config.json: " + key + " must be a positive number");
        }
        return v.asDouble();
    }

    private int required(JsonNode c, String key) {
        JsonNode v = c.get(key);
        if (v == null || !v.canConvertToInt() || v.asInt() < 1) {
            throw new ModException(dir + "/config.json: \"" + key + "\" must be a positive integer");
        }
        return v.asInt();
    }

    private void refuseIfSet(JsonNode c, String key, String what) {
        if (c.hasNonNull(key)) {
            throw new ModException(dir + "/config.json: " + key + " is set; " + what + " is not something this model computes");
        }
    }

    private void refuseIfTrue(JsonNode c, String key, String what) {
        if (c.path(key).asBoolean(false)) {
            throw new ModException(dir + "/config.json: " + key + " is true; " + what + " are not something this model has");
        }
    }

    @Override
    public void close() {
        files.forEach(SafetensorsFile::close);
    }
}
