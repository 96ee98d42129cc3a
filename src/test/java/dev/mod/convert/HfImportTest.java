package dev.mod.convert;

import dev.mod.ModException;
import dev.mod.io.SafetensorsWriter;
import dev.mod.model.DType;
import dev.mod.model.Model;
import dev.mod.model.Tensor;
import dev.mod.plan.ForwardPlan;
import dev.mod.reference.ReferenceKernels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Hugging Face Llama checkpoints written to the published layout (config.json, HF tensor names, q and k in the
 * half-split rotary order, GQA, tied or untied embeddings, one file or shards with an index) and imported; the
 * imported model's logits against a forward pass written here from HF's own definition (rotate_half), on the
 * checkpoint's tensors as they are stored.
 */
class HfImportTest {
    @TempDir
    Path dir;

    /** A checkpoint's shape and how it is stored. */
    record Checkpoint(int vocab, int dim, int layers, int heads, int kvHeads, int hidden, double theta, boolean tied, boolean sharded,
                      DType type) {
        int dh() {
            return dim / heads;
        }
    }

    static String configJson(Checkpoint c, String extra) {
        return "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\", \"vocab_size\": " + c.vocab()
                + ", \"hidden_size\": " + c.dim() + ", \"intermediate_size\": " + c.hidden() + ", \"num_hidden_layers\": " + c.layers()
                + ", \"num_attention_heads\": " + c.heads() + ", \"num_key_value_heads\": " + c.kvHeads()
                + ", \"rms_norm_eps\": 1e-06, \"rope_theta\": " + c.theta() + ", \"max_position_embeddings\": 64"
                + ", \"hidden_act\": \"silu\", \"tie_word_embeddings\": " + c.tied() + ", \"rope_scaling\": null"
                + ", \"attention_bias\": false, \"torch_dtype\": \"float32\"" + extra + "}";
    }

    /** Random weights under HF's names; written to dir, returned as float arrays for the HF forward pass. */
    static Map<String, float[]> write(Path dir, Checkpoint c, String extraConfig) throws IOException {
        return write(dir, c, extraConfig, 0);
    }

    /**
     * The same, with every token's embedding moved by a shared vector of this size: a trained model's residual stream
     * has a direction common to all tokens, which random Gaussian embeddings lack.
     */
    static Map<String, float[]> write(Path dir, Checkpoint c, String extraConfig, double sharedOffset) throws IOException {
        SplittableRandom random = new SplittableRandom(7);
        double[] offset = new double[c.dim()];
        for (int j = 0; j < c.dim(); j++) {
            offset[j] = sharedOffset * random.nextGaussian();
        }
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("model.embed_tokens.weight", new long[] {c.vocab(), c.dim()});
        for (int i = 0; i < c.layers(); i++) {
            String p = "model.layers." + i + ".";
            shapes.put(p + "input_layernorm.weight", new long[] {c.dim()});
            shapes.put(p + "self_attn.q_proj.weight", new long[] {(long) c.heads() * c.dh(), c.dim()});
            shapes.put(p + "self_attn.k_proj.weight", new long[] {(long) c.kvHeads() * c.dh(), c.dim()});
            shapes.put(p + "self_attn.v_proj.weight", new long[] {(long) c.kvHeads() * c.dh(), c.dim()});
            shapes.put(p + "self_attn.o_proj.weight", new long[] {c.dim(), (long) c.heads() * c.dh()});
            shapes.put(p + "post_attention_layernorm.weight", new long[] {c.dim()});
            shapes.put(p + "mlp.gate_proj.weight", new long[] {c.hidden(), c.dim()});
            shapes.put(p + "mlp.up_proj.weight", new long[] {c.hidden(), c.dim()});
            shapes.put(p + "mlp.down_proj.weight", new long[] {c.dim(), c.hidden()});
        }
        shapes.put("model.norm.weight", new long[] {c.dim()});
        if (!c.tied()) {
            shapes.put("lm_head.weight", new long[] {c.vocab(), c.dim()});
        }
        Map<String, float[]> values = new LinkedHashMap<>();
        List<Tensor> tensors = new ArrayList<>();
        for (Map.Entry<String, long[]> e : shapes.entrySet()) {
            float[] v = new float[Math.toIntExact(Tensor.numel(e.getValue()))];
            boolean norm = e.getValue().length == 1;
            for (int i = 0; i < v.length; i++) {
                v[i] = norm ? (float) (1 + 0.2 * random.nextGaussian()) : (float) (0.2 * random.nextGaussian());
                if (e.getKey().equals("model.embed_tokens.weight")) {
                    v[i] += (float) offset[i % c.dim()];
                }
            }
            Tensor t = Tensor.of(e.getKey(), v, e.getValue()).as(c.type());
            values.put(e.getKey(), t.toFloatArray());
            tensors.add(t);
        }
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), configJson(c, extraConfig));
        if (c.sharded()) {
            int half = tensors.size() / 2;
            SafetensorsWriter.write(dir.resolve("model-00001-of-00002.safetensors"), Map.of("format", "pt"), tensors.subList(0, half));
            SafetensorsWriter.write(dir.resolve("model-00002-of-00002.safetensors"), Map.of("format", "pt"),
                    tensors.subList(half, tensors.size()));
            StringBuilder map = new StringBuilder("{\"metadata\": {\"total_size\": 0}, \"weight_map\": {");
            for (int i = 0; i < tensors.size(); i++) {
                map.append(i == 0 ? "" : ", ").append('"').append(tensors.get(i).name()).append("\": \"model-0000")
                        .append(i < half ? 1 : 2).append("-of-00002.safetensors\"");
            }
            Files.writeString(dir.resolve("model.safetensors.index.json"), map.append("}}").toString());
        } else {
            SafetensorsWriter.write(dir.resolve("model.safetensors"), Map.of("format", "pt"), tensors);
        }
        return values;
    }

    /** logits[T][V] of HF's LlamaForCausalLM (eager attention, rotate_half RoPE) over one sequence, in double. */
    static double[][] hfLogits(Checkpoint c, Map<String, float[]> w, int[] tokens) {
        int t = tokens.length;
        int d = c.dim();
        int dh = c.dh();
        double[][] x = new double[t][d];
        for (int i = 0; i < t; i++) {
            for (int j = 0; j < d; j++) {
                x[i][j] = w.get("model.embed_tokens.weight")[tokens[i] * d + j];
            }
        }
        for (int l = 0; l < c.layers(); l++) {
            String p = "model.layers." + l + ".";
            double[][] h = rmsNorm(x, w.get(p + "input_layernorm.weight"));
            double[][] q = rotateHalf(matmul(h, w.get(p + "self_attn.q_proj.weight"), c.heads() * dh), c.heads(), dh, c.theta());
            double[][] k = rotateHalf(matmul(h, w.get(p + "self_attn.k_proj.weight"), c.kvHeads() * dh), c.kvHeads(), dh, c.theta());
            double[][] v = matmul(h, w.get(p + "self_attn.v_proj.weight"), c.kvHeads() * dh);
            double[][] attn = new double[t][c.heads() * dh];
            for (int head = 0; head < c.heads(); head++) {
                int g = head / (c.heads() / c.kvHeads());
                for (int i = 0; i < t; i++) {
                    double[] s = new double[i + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j <= i; j++) {
                        for (int e = 0; e < dh; e++) {
                            s[j] += q[i][head * dh + e] * k[j][g * dh + e];
                        }
                        s[j] /= Math.sqrt(dh);
                        max = Math.max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j <= i; j++) {
                        s[j] = Math.exp(s[j] - max);
                        sum += s[j];
                    }
                    for (int j = 0; j <= i; j++) {
                        for (int e = 0; e < dh; e++) {
                            attn[i][head * dh + e] += s[j] / sum * v[j][g * dh + e];
                        }
                    }
                }
            }
            add(x, matmul(attn, w.get(p + "self_attn.o_proj.weight"), d));
            double[][] h2 = rmsNorm(x, w.get(p + "post_attention_layernorm.weight"));
            double[][] gate = matmul(h2, w.get(p + "mlp.gate_proj.weight"), c.hidden());
            double[][] up = matmul(h2, w.get(p + "mlp.up_proj.weight"), c.hidden());
            for (int i = 0; i < t; i++) {
                for (int j = 0; j < c.hidden(); j++) {
                    gate[i][j] = gate[i][j] / (1 + Math.exp(-gate[i][j])) * up[i][j];
                }
            }
            add(x, matmul(gate, w.get(p + "mlp.down_proj.weight"), d));
        }
        return matmul(rmsNorm(x, w.get("model.norm.weight")), w.get(c.tied() ? "model.embed_tokens.weight" : "lm_head.weight"), c.vocab());
    }

    // out[T][n] = x[T][m] . W[n][m]^T
    private static double[][] matmul(double[][] x, float[] wt, int n) {
        int m = x[0].length;
        double[][] out = new double[x.length][n];
        for (int i = 0; i < x.length; i++) {
            for (int o = 0; o < n; o++) {
                double s = 0;
                for (int j = 0; j < m; j++) {
                    s += x[i][j] * wt[o * m + j];
                }
                out[i][o] = s;
            }
        }
        return out;
    }

    private static double[][] rmsNorm(double[][] x, float[] weight) {
        double[][] out = new double[x.length][];
        for (int i = 0; i < x.length; i++) {
            double ss = 0;
            for (double v : x[i]) {
                ss += v * v;
            }
            double scale = 1 / Math.sqrt(ss / x[i].length + 1e-6);
            out[i] = new double[x[i].length];
            for (int j = 0; j < x[i].length; j++) {
                out[i][j] = x[i][j] * scale * weight[j];
            }
        }
        return out;
    }

    // HF's apply_rotary_pos_emb: q * cos + rotate_half(q) * sin, cos and sin of position * inv_freq repeated over both halves
    private static double[][] rotateHalf(double[][] m, int heads, int dh, double theta) {
        double[][] out = new double[m.length][m[0].length];
        for (int pos = 0; pos < m.length; pos++) {
            for (int h = 0; h < heads; h++) {
                for (int i = 0; i < dh / 2; i++) {
                    double angle = pos * Math.pow(theta, -2.0 * i / dh);
                    double a = m[pos][h * dh + i];
                    double b = m[pos][h * dh + i + dh / 2];
                    out[pos][h * dh + i] = a * Math.cos(angle) - b * Math.sin(angle);
                    out[pos][h * dh + i + dh / 2] = b * Math.cos(angle) + a * Math.sin(angle);
                }
            }
        }
        return out;
    }

    private static void add(double[][] x, double[][] y) {
        for (int i = 0; i < x.length; i++) {
            for (int j = 0; j < x[i].length; j++) {
                x[i][j] += y[i][j];
            }
        }
    }

    static float[] modLogits(Model m, int[] tokens) {
        ForwardPlan plan = new ForwardPlan(m, new ReferenceKernels(), 1, tokens.length);
        plan.run(new int[][] {tokens});
        return plan.logits().clone();
    }

    private static final int[] TOKENS = {3, 141, 59, 26, 5, 35, 89, 79, 32, 38, 46, 26, 43, 38, 32, 79, 50, 28};

    @Test
    void theImportedModelComputesWhatHfComputesWithGqaTiedOrNotShardedOrNot() throws IOException {
        List<Checkpoint> cases = List.of(
                new Checkpoint(150, 32, 2, 4, 2, 48, 10000, false, false, DType.F32),
                new Checkpoint(150, 32, 2, 4, 1, 40, 500000, true, true, DType.F32),
                new Checkpoint(150, 48, 1, 3, 3, 64, 10000, false, true, DType.BF16));
        for (int n = 0; n < cases.size(); n++) {
            Checkpoint c = cases.get(n);
            Path folder = dir.resolve("hf" + n);
            Map<String, float[]> weights = write(folder, c, "");
            double[][] expected = hfLogits(c, weights, TOKENS);
            try (HfImport imported = HfImport.open(folder)) {
                Model m = imported.model();
                assertEquals(c.kvHeads(), m.config().nKvHeads());
                float[] logits = modLogits(m, TOKENS);
                double worst = 0;
                for (int i = 0; i < TOKENS.length; i++) {
                    for (int v = 0; v < c.vocab(); v++) {
                        worst = Math.max(worst, Math.abs(expected[i][v] - logits[i * c.vocab() + v]));
                    }
                }
                assertTrue(worst < 2e-4, c + ": logits differ by " + worst);
                assertEquals(DType.F32, m.layer(0).attention().norm().dtype(), "norms in F32");
                assertEquals(c.type(), m.tensor("layers.0.attention.wq.weight").dtype(), "matrices as stored");
            }
        }
    }

    /** transformers 5 writes RoPE's base under rope_parameters; the CLI writes the model file that forward then reads. */
    @Test
    void transformers5sRopeParametersAndTheCliRoundTrip() throws IOException {
        Checkpoint c = new Checkpoint(150, 32, 2, 4, 2, 48, 500000, true, false, DType.F32);
        Path folder = dir.resolve("hf5");
        Map<String, float[]> weights = write(folder, c, "");
        String json = Files.readString(folder.resolve("config.json")).replace("\"rope_theta\": 500000.0",
                "\"rope_parameters\": {\"rope_theta\": 500000.0, \"rope_type\": \"default\"}");
        Files.writeString(folder.resolve("config.json"), json);
        Path model = dir.resolve("imported.safetensors");
        assertEquals(0, dev.mod.cli.Main.run("import", "--from", "hf", folder.toString(), "--out", model.toString()));
        double[][] expected = hfLogits(c, weights, TOKENS);
        try (Model m = dev.mod.io.ModelFile.load(model)) {
            assertEquals(500000.0, m.config().ropeTheta());
            assertTrue(m.tokenizer().contains("Hugging Face"), m.tokenizer());
            float[] logits = modLogits(m, TOKENS);
            for (int i = 0; i < TOKENS.length; i++) {
                for (int v = 0; v < c.vocab(); v++) {
                    assertEquals(expected[i][v], logits[i * c.vocab() + v], 2e-4);
                }
            }
        }
        Files.writeString(folder.resolve("config.json"), json.replace("\"rope_type\": \"default\"", "\"rope_type\": \"llama3\""));
        ModException e = assertThrows(ModException.class, () -> HfImport.open(folder).close());
        assertTrue(e.getMessage().contains("rope_parameters.rope_type \"llama3\""), e.getMessage());
    }

    /**
     * The paper's use, as the public MoD repositories offer it: a pretrained checkpoint converted to MoD and tuned on
     * text in its own token ids (u16), routers only; evaluated on the same ids; byte text is refused for it.
     */
    @Test
    void aConvertedCheckpointIsTunedOnItsOwnTokenIds() throws IOException {
        Checkpoint c = new Checkpoint(150, 32, 2, 4, 2, 48, 10000, false, false, DType.F32);
        write(dir.resolve("hf"), c, "", 0.5);
        Path model = dir.resolve("mod.safetensors");
        assertEquals(0, dev.mod.cli.Main.run("import", "--from", "hf", dir.resolve("hf").toString(), "--mod-capacity", "0.25",
                "--out", model.toString()));
        java.nio.ByteBuffer ids = java.nio.ByteBuffer.allocate(2 * 3000).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < 3000; i++) {
            ids.putShort((short) ((i * 7 + i / 5) % c.vocab()));
        }
        Path bin = Files.write(dir.resolve("train.bin"), ids.array());
        Path run = dir.resolve("run");
        assertEquals(0, dev.mod.cli.Main.run("train", "--quiet", "--init-from", model.toString(), "--train", "routers", "--data",
                "u16:" + bin, "--steps", "3", "--batch", "2", "--seq", "32", "--out", run.toString()));
        try (Model before = dev.mod.io.ModelFile.load(model); Model after = dev.mod.io.ModelFile.load(run.resolve("model.safetensors"))) {
            assertTrue(after.tokenizer().contains("Hugging Face"), "the tuned model keeps its tokenizer: " + after.tokenizer());
            assertTrue(!java.util.Arrays.equals(before.tensor("layers.1.router.weight").toFloatArray(),
                    after.tensor("layers.1.router.weight").toFloatArray()), "the router trained");
            assertTrue(java.util.Arrays.equals(before.tensor("layers.1.attention.wq.weight").toFloatArray(),
                    after.tensor("layers.1.attention.wq.weight").toFloatArray()), "the rest is frozen");
        }
        assertEquals(0, dev.mod.cli.Main.run("eval", "--quiet", "--model", run.resolve("model.safetensors").toString(), "--text",
                "u16:" + bin, "--seq", "32"));
        Path text = Files.writeString(dir.resolve("text.txt"), "bytes are not this model's tokens. ".repeat(100));
        assertEquals(1, dev.mod.cli.Main.run("train", "--quiet", "--init-from", model.toString(), "--data", text.toString(),
                "--steps", "1", "--batch", "2", "--seq", "32", "--out", dir.resolve("bytes").toString()));
        assertEquals(1, dev.mod.cli.Main.run("eval", "--quiet", "--model", model.toString(), "--text", text.toString(), "--seq", "32"));
    }

    /** Without undoing HF's rotary permutation the logits would be far off: the check above can fail. */
    @Test
    void theRotaryPermutationIsWhatMakesThemAgree() throws IOException {
        Checkpoint c = new Checkpoint(150, 32, 1, 4, 2, 48, 10000, false, false, DType.F32);
        Map<String, float[]> weights = write(dir.resolve("hf"), c, "");
        double[][] expected = hfLogits(c, weights, TOKENS);
        try (HfImport imported = HfImport.open(dir.resolve("hf"))) {
            Model m = imported.model();
            Map<String, Tensor> tensors = new LinkedHashMap<>(m.tensors());
            tensors.put("layers.0.attention.wq.weight", Tensor.of("layers.0.attention.wq.weight",
                    weights.get("model.layers.0.self_attn.q_proj.weight"), 32, 32));
            tensors.put("layers.0.attention.wk.weight", Tensor.of("layers.0.attention.wk.weight",
                    weights.get("model.layers.0.self_attn.k_proj.weight"), 16, 32));
            float[] unpermuted = modLogits(new Model(m.config(), tensors, null), TOKENS);
            double worst = 0;
            for (int i = 1; i < TOKENS.length; i++) {
                for (int v = 0; v < c.vocab(); v++) {
                    worst = Math.max(worst, Math.abs(expected[i][v] - unpermuted[i * c.vocab() + v]));
                }
            }
            assertTrue(worst > 1e-2, "q and k as HF stores them give other logits: " + worst);
        }
    }

    @Test
    void whatTheModelCannotComputeIsRefused() throws IOException {
        Checkpoint c = new Checkpoint(150, 32, 1, 4, 2, 48, 10000, false, false, DType.F32);
        Map<String, String> bad = Map.of(
                ", \"head_dim\": 16", "head_dim 16 is not hidden_size / num_attention_heads = 8",
                ", \"attention_bias\": true", "attention_bias is true",
                ", \"hidden_act\": \"gelu\"", "hidden_act \"gelu\"");
        for (Map.Entry<String, String> e : bad.entrySet()) {
            Path folder = dir.resolve("bad" + Math.abs(e.getKey().hashCode()));
            write(folder, c, "");
            String json = Files.readString(folder.resolve("config.json"));
            String key = e.getKey().substring(3, e.getKey().indexOf('"', 3));
            json = json.replaceAll(", \"" + key + "\": [^,}]+", "");
            Files.writeString(folder.resolve("config.json"), json.substring(0, json.length() - 1) + e.getKey() + "}");
            ModException error = assertThrows(ModException.class, () -> HfImport.open(folder).close());
            assertTrue(error.getMessage().contains(e.getValue()), error.getMessage());
        }
        Path scaled = dir.resolve("scaled");
        write(scaled, c, "");
        Files.writeString(scaled.resolve("config.json"), Files.readString(scaled.resolve("config.json"))
                .replace("\"rope_scaling\": null", "\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0}"));
        assertTrue(assertThrows(ModException.class, () -> HfImport.open(scaled).close()).getMessage().contains("rope_scaling is set"));
        Path extra = dir.resolve("extra");
        write(extra, c, "");
        Files.writeString(extra.resolve("config.json"), Files.readString(extra.resolve("config.json"))
                .replace("\"num_hidden_layers\": 1", "\"num_hidden_layers\": 2"));
        ModException missing = assertThrows(ModException.class, () -> {
            try (HfImport i = HfImport.open(extra)) {
                i.model();
            }
        });
        assertTrue(missing.getMessage().contains("no tensor model.layers.1.input_layernorm.weight"), missing.getMessage());
    }

    /**
     * At capacity 1 every token goes through every block, weighted by r: fitted to r = 1, the converted model
     * computes almost the dense one; routers of zeros (r = 0) would drop the routed blocks altogether. The fit needs a
     * direction the residual stream shares across tokens, as a trained model's has (the checkpoint's embeddings get
     * one); on purely random embeddings it reaches only r = 0.62 +- 0.49 here.
     */
    @Test
    void aConvertedMoDModelStartsCloseToTheDenseOne() throws IOException {
        Checkpoint c = new Checkpoint(150, 32, 4, 4, 2, 48, 10000, false, false, DType.F32);
        write(dir.resolve("hf"), c, "", 0.5);
        try (HfImport imported = HfImport.open(dir.resolve("hf"))) {
            Model dense = imported.model();
            int[][] calibration = new int[16][32];
            SplittableRandom random = new SplittableRandom(3);
            for (int[] row : calibration) {
                for (int i = 0; i < row.length; i++) {
                    row[i] = random.nextInt(c.vocab());
                }
            }
            ModConversion.Result full = ModConversion.toMod(dense, 1.0, List.of(1, 3), calibration, new ReferenceKernels());
            for (ModConversion.RouterFit f : full.fits()) {
                assertEquals(1.0, f.mean(), 0.05, "r fitted to 1: " + f);
            }
            float[] denseLogits = modLogits(dense, TOKENS);
            float[] modLogits = modLogits(full.model(), TOKENS);
            Map<String, Tensor> zero = new LinkedHashMap<>(full.model().tensors());
            for (int layer : List.of(1, 3)) {
                String name = "layers." + layer + ".router.weight";
                zero.put(name, Tensor.of(name, new float[c.dim()], 1, c.dim()));
            }
            float[] zeroLogits = modLogits(new Model(full.model().config(), zero, null), TOKENS);
            double fitted = rms(denseLogits, modLogits);
            double dropped = rms(denseLogits, zeroLogits);
            assertTrue(fitted < 0.25 * dropped, "fitted routers " + fitted + " against zero routers " + dropped);
            Model eighth = ModConversion.toMod(dense, 0.125, List.of(1, 3), calibration, new ReferenceKernels()).model();
            assertEquals(List.of(1, 3), eighth.config().routedLayers());
            assertEquals(4, new ForwardPlan(eighth, new ReferenceKernels(), 1, 32).capacity());
        }
    }

    private static double rms(float[] a, float[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += (a[i] - b[i]) * (double) (a[i] - b[i]);
        }
        return Math.sqrt(s / a.length);
    }
}
