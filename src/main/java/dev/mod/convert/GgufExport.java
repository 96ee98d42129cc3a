package dev.mod.convert;

import dev.mod.ModException;
import dev.mod.data.ByteTokenizer;
import dev.mod.io.GgufWriter;
import dev.mod.model.DType;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SortedSet;

/**
 * A dense model as a GGUF file that llama.cpp runs with its `llama` architecture, the same computation: pre-norm
 * blocks with RMSNorm, RoPE on adjacent pairs (ggml's normal rope mode, so q and k go in unpermuted, unlike a Hugging
 * Face checkpoint's), grouped-query attention, SwiGLU, an untied output. The vocabulary is the byte tokenizer's as a
 * GPT-2-style byte-level BPE vocabulary (each byte the printable character GPT-2 maps it to), BOS and EOS as control
 * tokens, with one merge that can never apply (llama.cpp refuses a BPE vocabulary without merges), so llama.cpp
 * tokenizes text into the same byte ids. A MoD model has no equivalent in llama.cpp and is refused.
 */
public final class GgufExport {
    /** llama.cpp's token types (llama_token_type). */
    static final int NORMAL = 1;
    static final int CONTROL = 3;
    static final int UNUSED = 5;

    static final String BOS_TEXT = "<s>";
    static final String EOS_TEXT = "</s>";

    private GgufExport() {
    }

    /** general.file_type: llama_ftype's number for the matrices' type (norms stay F32). */
    static int fileType(DType matrices) {
        return switch (matrices) {
            case F32 -> 0;
            case F16 -> 1;
            case BF16 -> 32;
            case I32 -> throw new ModException("GGUF: integer matrices");
        };
    }

    public static void write(Model model, String name, Path out) {
        ModelConfig c = model.config();
        if (!c.routedLayers().isEmpty()) {
            throw new ModException("GGUF: this is a MoD model (routed layers " + c.routedLayers() + "); llama.cpp has no routed "
                    + "blocks, so only a dense model (\"routed_layers\": []) exports");
        }
        ByteTokenizer.check(model);
        SortedSet<DType> types = model.matrixTypes();
        if (types.size() != 1) {
            throw new ModException("GGUF: the model's matrices are of several types " + types + "; llama.cpp's file type names one");
        }
        GgufWriter gguf = new GgufWriter()
                .putString("general.architecture", "llama")
                .putString("general.name", name)
                .putUint32("general.file_type", fileType(types.first()))
                .putUint32("llama.vocab_size", c.vocabSize())
                .putUint32("llama.context_length", c.maxSeqLen())
                .putUint32("llama.embedding_length", c.dim())
                .putUint32("llama.block_count", c.nLayers())
                .putUint32("llama.feed_forward_length", c.hiddenDim())
                .putUint32("llama.attention.head_count", c.nHeads())
                .putUint32("llama.attention.head_count_kv", c.nKvHeads())
                .putUint32("llama.attention.key_length", c.headDim())
                .putUint32("llama.attention.value_length", c.headDim())
                .putUint32("llama.rope.dimension_count", c.headDim())
                .putFloat32("llama.rope.freq_base", (float) c.ropeTheta())
                .putFloat32("llama.attention.layer_norm_rms_epsilon", (float) c.normEps())
                .putString("tokenizer.ggml.model", "gpt2")
                .putString("tokenizer.ggml.pre", "default")
                .putStrings("tokenizer.ggml.tokens", tokens(c.vocabSize()))
                .putInt32s("tokenizer.ggml.token_type", tokenTypes(c.vocabSize()))
                .putStrings("tokenizer.ggml.merges", List.of(BOS_TEXT + " " + EOS_TEXT))
                .putUint32("tokenizer.ggml.bos_token_id", ByteTokenizer.BOS)
                .putUint32("tokenizer.ggml.eos_token_id", ByteTokenizer.EOS)
                .putBool("tokenizer.ggml.add_bos_token", true)
                .putBool("tokenizer.ggml.add_eos_token", false);
        gguf.addTensor("token_embd.weight", model.embeddings());
        for (int i = 0; i < c.nLayers(); i++) {
            String from = "layers." + i + ".";
            String to = "blk." + i + ".";
            gguf.addTensor(to + "attn_norm.weight", model.tensor(from + "attention_norm.weight"))
                    .addTensor(to + "attn_q.weight", model.tensor(from + "attention.wq.weight"))
                    .addTensor(to + "attn_k.weight", model.tensor(from + "attention.wk.weight"))
                    .addTensor(to + "attn_v.weight", model.tensor(from + "attention.wv.weight"))
                    .addTensor(to + "attn_output.weight", model.tensor(from + "attention.wo.weight"))
                    .addTensor(to + "ffn_norm.weight", model.tensor(from + "ffn_norm.weight"))
                    .addTensor(to + "ffn_gate.weight", model.tensor(from + "feed_forward.w1.weight"))
                    .addTensor(to + "ffn_up.weight", model.tensor(from + "feed_forward.w3.weight"))
                    .addTensor(to + "ffn_down.weight", model.tensor(from + "feed_forward.w2.weight"));
        }
        gguf.addTensor("output_norm.weight", model.finalNorm());
        gguf.addTensor("output.weight", model.output());
        gguf.write(out);
    }

    /** Token texts: bytes as GPT-2's byte-level characters, then BOS, EOS, and any further ids as unused. */
    static List<String> tokens(int vocab) {
        int[] byteChar = gpt2ByteCharacters();
        List<String> tokens = new ArrayList<>(vocab);
        for (int b = 0; b < 256; b++) {
            tokens.add(Character.toString(byteChar[b]));
        }
        tokens.add(BOS_TEXT);
        tokens.add(EOS_TEXT);
        for (int id = ByteTokenizer.VOCAB; id < vocab; id++) {
            tokens.add("<unused" + (id - ByteTokenizer.VOCAB) + ">");
        }
        return tokens;
    }

    static int[] tokenTypes(int vocab) {
        int[] types = new int[vocab];
        for (int id = 0; id < vocab; id++) {
            types[id] = id < 256 ? NORMAL : id < ByteTokenizer.VOCAB ? CONTROL : UNUSED;
        }
        return types;
    }

    /**
     * GPT-2's bytes_to_unicode: the printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves, the others
     * for 256, 257, ... in byte order, so that every byte is one visible character.
     */
    static int[] gpt2ByteCharacters() {
        int[] chars = new int[256];
        int next = 256;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            chars[b] = printable ? b : next++;
        }
        return chars;
    }
}
