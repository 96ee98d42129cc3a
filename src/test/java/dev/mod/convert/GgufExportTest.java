package dev.mod.convert;

import dev.mod.ModException;
import dev.mod.TestModels;
import dev.mod.io.GgufReader;
import dev.mod.model.DType;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.RouterWeighting;
import dev.mod.model.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The GGUF file read back by a reader written from the specification: llama's keys, the byte vocabulary, every weight. */
class GgufExportTest {
    @TempDir
    Path dir;

    private static ModelConfig dense(int vocab) {
        return new ModelConfig(vocab, 64, 2, 4, 2, 96, 1e-5, 500000.0, 128, 1.0, List.of(), RouterWeighting.RAW);
    }

    @Test
    void everyWeightKeyAndTokenIsWhereLlamaCppLooks() throws IOException {
        for (DType type : List.of(DType.F32, DType.BF16)) {
            Model model = ModelInit.random(dense(260), 5, 0).withMatrixType(type);
            Path file = dir.resolve(type + ".gguf");
            GgufExport.write(model, "t", file);
            GgufReader gguf = new GgufReader(file);
            assertEquals(3, gguf.version);
            Map<String, Object> m = gguf.metadata;
            assertEquals("llama", m.get("general.architecture"));
            assertEquals(type == DType.F32 ? 0 : 32, m.get("general.file_type"));
            assertEquals(2, m.get("llama.block_count"));
            assertEquals(64, m.get("llama.embedding_length"));
            assertEquals(96, m.get("llama.feed_forward_length"));
            assertEquals(4, m.get("llama.attention.head_count"));
            assertEquals(2, m.get("llama.attention.head_count_kv"));
            assertEquals(16, m.get("llama.rope.dimension_count"));
            assertEquals(500000f, m.get("llama.rope.freq_base"));
            assertEquals(1e-5f, m.get("llama.attention.layer_norm_rms_epsilon"));
            assertEquals(128, m.get("llama.context_length"));

            List<?> tokens = (List<?>) m.get("tokenizer.ggml.tokens");
            List<?> types = (List<?>) m.get("tokenizer.ggml.token_type");
            assertEquals(260, tokens.size());
            assertEquals(260, new HashSet<>(tokens).size(), "token texts are distinct");
            assertEquals("A", tokens.get('A'));
            assertEquals("\u0120", tokens.get(' '), "GPT-2's byte-level space");
            assertEquals("<s>", tokens.get(256));
            assertEquals(256, m.get("tokenizer.ggml.bos_token_id"));
            assertEquals(257, m.get("tokenizer.ggml.eos_token_id"));
            assertEquals(List.of(1, 3, 3, 5), List.of(types.get(255), types.get(256), types.get(257), types.get(258)));
            for (int b = 0; b < 256; b++) {
                assertEquals(1, ((String) tokens.get(b)).codePointCount(0, ((String) tokens.get(b)).length()), "one character per byte");
            }
            assertEquals(1, ((List<?>) m.get("tokenizer.ggml.merges")).size());

            Map<String, String> names = new java.util.LinkedHashMap<>();
            names.put("token_embd.weight", "tok_embeddings.weight");
            for (int i = 0; i < 2; i++) {
                String p = "layers." + i + ".";
                String b = "blk." + i + ".";
                names.put(b + "attn_norm.weight", p + "attention_norm.weight");
                names.put(b + "attn_q.weight", p + "attention.wq.weight");
                names.put(b + "attn_k.weight", p + "attention.wk.weight");
                names.put(b + "attn_v.weight", p + "attention.wv.weight");
                names.put(b + "attn_output.weight", p + "attention.wo.weight");
                names.put(b + "ffn_norm.weight", p + "ffn_norm.weight");
                names.put(b + "ffn_gate.weight", p + "feed_forward.w1.weight");
                names.put(b + "ffn_up.weight", p + "feed_forward.w3.weight");
                names.put(b + "ffn_down.weight", p + "feed_forward.w2.weight");
            }
            names.put("output_norm.weight", "norm.weight");
            names.put("output.weight", "output.weight");
            assertEquals(List.copyOf(names.keySet()), gguf.tensors.stream().map(GgufReader.TensorInfo::name).toList());
            assertEquals(0, gguf.dataStart % 32);
            long end = 0;
            for (GgufReader.TensorInfo info : gguf.tensors) {
                Tensor t = model.tensor(names.get(info.name()));
                long[] reversed = new long[t.rank()];
                for (int d = 0; d < t.rank(); d++) {
                    reversed[d] = t.dim(t.rank() - 1 - d);
                }
                assertArrayEquals(reversed, info.dims(), info.name() + ": ggml's dimensions, innermost first");
                assertEquals(t.dtype() == DType.F32 ? 0 : 30, info.type(), info.name());
                assertEquals(0, info.offset() % 32, info.name() + " aligned");
                assertTrue(info.offset() >= end, "tensors do not overlap");
                byte[] expected = t.data().toArray(ValueLayout.JAVA_BYTE);
                assertArrayEquals(expected, gguf.data(info, expected.length), info.name());
                end = info.offset() + expected.length;
            }
            assertEquals(gguf.dataStart + end, gguf.fileSize());
        }
    }

    @Test
    void aModModelAndAVocabularyWithoutBytesAreRefused() {
        Model mod = ModelInit.random(TestModels.config(2, 2, 0.5, List.of(1), RouterWeighting.RAW), 1, 0);
        ModException e = assertThrows(ModException.class, () -> GgufExport.write(mod, "m", dir.resolve("m.gguf")));
        assertTrue(e.getMessage().contains("this is a MoD model (routed layers [1]); llama.cpp has no routed blocks"), e.getMessage());
        ModException small = assertThrows(ModException.class, () -> GgufExport.write(ModelInit.random(dense(64), 1, 0), "s",
                dir.resolve("s.gguf")));
        assertTrue(small.getMessage().contains("needs a vocabulary of 258"), small.getMessage());
        assertTrue(!Files.exists(dir.resolve("m.gguf")) && !Files.exists(dir.resolve("s.gguf")), "nothing written");
    }

    @Test
    void gpt2sByteCharactersAreABijectionOntoPrintableCharacters() {
        int[] chars = GgufExport.gpt2ByteCharacters();
        assertEquals(256, java.util.Arrays.stream(chars).distinct().count());
        for (int c : chars) {
            assertTrue(!Character.isWhitespace(c) && !Character.isISOControl(c), "printable: " + c);
        }
        assertEquals(0x100, chars[0]);
        assertEquals(0x143, chars[0xAD], "the soft hyphen is the last of the remapped bytes");
    }
}
