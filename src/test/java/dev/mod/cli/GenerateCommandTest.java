package dev.mod.cli;

import dev.mod.io.ModelFile;
import dev.mod.io.SafetensorsFile;
import dev.mod.model.Model;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** mod generate, mod calibrate and mod forward --routing through the CLI: results, reports and every refusal. */
class GenerateCommandTest extends ConsoleTest {
    @TempDir
    static Path dir;
    private static Path model;
    private static Path withPredictor;
    private static Path calibrated;

    @BeforeAll
    static void models() throws IOException {
        Path config = dir.resolve("config.json");
        Files.writeString(config, "{\"vocab_size\": 258, \"dim\": 32, \"n_layers\": 4, \"n_heads\": 4, \"n_kv_heads\": 2, "
                + "\"hidden_dim\": 48, \"max_seq_len\": 40, \"capacity\": 0.25}");
        model = dir.resolve("m.safetensors");
        withPredictor = dir.resolve("p.safetensors");
        calibrated = dir.resolve("c.safetensors");
        Files.writeString(dir.resolve("text.txt"), "The quick brown fox jumps over the lazy dog. ".repeat(4));
        assertEquals(0, Main.run("init", "--config", config.toString(), "--out", model.toString()));
        assertEquals(0, Main.run("init", "--config", config.toString(), "--predictor-dim", "16", "--out", withPredictor.toString()));
        assertEquals(0, Main.run("calibrate", "--model", model.toString(), "--text", dir.resolve("text.txt").toString(),
                "--seq", "40", "--sequences", "4", "--out", calibrated.toString()));
    }

    @Test
    void aCalibrationIntoAFolderInUseIsRefused() throws IOException {
        Path busy = Files.createDirectories(dir.resolve("busy"));
        try (dev.mod.io.FolderLock held = dev.mod.io.FolderLock.acquire(busy, "training run")) {
            assertEquals(1, mod("calibrate", "--model", model.toString(), "--text", dir.resolve("text.txt").toString(),
                    "--seq", "40", "--sequences", "4", "--out", busy.resolve("c.safetensors").toString()));
        }
        assertTrue(stderr().contains("is in use by a training run (process " + ProcessHandle.current().pid() + ")"), stderr());
        assertTrue(!Files.exists(busy.resolve("c.safetensors")), "nothing written");
    }

    @Test
    void sameSeedSameTextAndAReportOnStandardError() {
        String[] args = {"generate", "--model", calibrated.toString(), "--prompt", "The fox", "--max-tokens", "20", "--seed", "3"};
        assertEquals(0, mod(args));
        String first = stdout();
        assertTrue(stderr().contains("routing calibrated"), stderr());
        assertTrue(stderr().contains("time to first token"), stderr());
        assertTrue(stderr().matches("(?s).*time to first token: [\\d.]+ ms \\(prefill [\\d.]+ ms, warm-up [\\d.]+ ms: .*"),
                "the cpu backend warms the decode path up by default: " + stderr());
        assertTrue(stderr().matches("(?s).*KV cache \\(F32\\): [\\d,]+ bytes for \\d+ tokens; the dense model would hold [\\d,]+ \\(0\\.\\d+x\\).*"),
                stderr());
        assertEquals(0, mod(args));
        assertEquals(first, stdout());
    }

    /**
     * A BF16 model keeps a BF16 cache by default, half the bytes of the F32 cache that --kv-cache f32 asks for, and
     * --kv-cache bf16 gives an F32 model one; the same tokens in the cache either way (greedy decoding may differ).
     */
    @Test
    void theKvCacheFollowsTheModelsProjectionsUnlessAsked() throws IOException {
        Path config = dir.resolve("config.json");
        Path bf16 = dir.resolve("bf16.safetensors");
        assertEquals(0, Main.run("init", "--config", config.toString(), "--dtype", "bf16", "--out", bf16.toString()));
        long[] bytes = new long[3];
        String[][] runs = {{bf16.toString()}, {bf16.toString(), "--kv-cache", "f32"}, {model.toString(), "--kv-cache", "bf16"}};
        String[] types = {"BF16", "F32", "BF16"};
        for (int i = 0; i < runs.length; i++) {
            java.util.List<String> args = new java.util.ArrayList<>(java.util.List.of("generate", "--prompt", "The fox", "--max-tokens", "8",
                    "--temperature", "0", "--warmup-steps", "0", "--model"));
            args.addAll(java.util.List.of(runs[i]));
            assertEquals(0, mod(args.toArray(String[]::new)));
            java.util.regex.Matcher m = java.util.regex.Pattern.compile("KV cache \\((\\w+)\\): ([\\d,]+) bytes for 15 tokens").matcher(stderr());
            assertTrue(m.find(), stderr());
            assertEquals(types[i], m.group(1), String.join(" ", args));
            bytes[i] = Long.parseLong(m.group(2).replace(",", ""));
        }
        assertEquals(2 * bytes[0], bytes[1], "F32 holds two bytes more a value");
        assertEquals(2, mod("generate", "--model", model.toString(), "--prompt", "a", "--kv-cache", "f16"), "a usage error");
        assertTrue(stderr().contains("--kv-cache") && stderr().contains("f32, bf16"), stderr());
    }

    @Test
    void calibrationIsStoredInTheModelFile() {
        try (Model m = ModelFile.load(calibrated)) {
            assertNotNull(m.calibration());
            assertEquals(m.config().routedLayers(), m.calibration().thresholds().keySet().stream().sorted().toList());
            assertEquals(4 * 40, m.calibration().tokens());
        }
    }

    @Test
    void aBatchOfPromptsPrintsOneCompletionEach() {
        assertEquals(0, mod("generate", "--model", withPredictor.toString(), "--prompt", "a", "--prompt", "bc",
                "--max-tokens", "5", "--temperature", "0"));
        assertTrue(stdout().contains("[1] ") && stdout().contains("[2] "), stdout());
        assertTrue(stderr().contains("routing predictor"), stderr());
    }

    /** A prompt from a file or standard input is the prompt as given on the command line: the same greedy text. */
    @Test
    void promptsComeFromFilesAndStandardInputAsTheyAre() throws IOException {
        String[] inline = {"generate", "--model", withPredictor.toString(), "--prompt", "The fox\n", "--prompt", "ab",
                "--max-tokens", "6", "--temperature", "0", "--warmup-steps", "0"};
        assertEquals(0, mod(inline), stderr());
        String expected = stdout();
        Path file = Files.writeString(dir.resolve("prompt.txt"), "ab");
        java.io.InputStream saved = System.in;
        try {
            System.setIn(new java.io.ByteArrayInputStream("The fox\n".getBytes(java.nio.charset.StandardCharsets.UTF_8)));
            assertEquals(0, mod("generate", "--model", withPredictor.toString(), "--prompt-file", "-", "--prompt-file", file.toString(),
                    "--max-tokens", "6", "--temperature", "0", "--warmup-steps", "0"), stderr());
        } finally {
            System.setIn(saved);
        }
        assertEquals(expected, stdout());
        assertEquals(2, mod("generate", "--model", withPredictor.toString()));
        assertTrue(stderr().startsWith("mod: error: generate needs a prompt: --prompt TEXT or --prompt-file FILE|-"), stderr());
        Path bad = Files.write(dir.resolve("latin1.txt"), new byte[] {'a', (byte) 0xE9, 'b'});
        refused("prompt file " + bad + " is not UTF-8 text", "generate", "--model", withPredictor.toString(), "--prompt-file", bad.toString());
    }

    @Test
    void forwardOfATextIsItsBytesAfterBos() throws IOException {
        Path text = Files.writeString(dir.resolve("forward.txt"), "fox");
        Path fromText = dir.resolve("text.safetensors");
        Path fromTokens = dir.resolve("tokens.safetensors");
        assertEquals(0, mod("forward", "--model", model.toString(), "--text", text.toString(), "--out", fromText.toString()), stderr());
        assertEquals(0, mod("forward", "--model", model.toString(), "--tokens", "256,102,111,120", "--out", fromTokens.toString()), stderr());
        try (SafetensorsFile a = SafetensorsFile.open(fromText); SafetensorsFile b = SafetensorsFile.open(fromTokens)) {
            assertArrayEquals(b.tensor("logits").toFloatArray(), a.tensor("logits").toFloatArray());
        }
    }

    @Test
    void forwardUnderACausalRuleWritesDecisionsAndRouterLogits() throws IOException {
        Path out = dir.resolve("forward.safetensors");
        assertEquals(0, mod("forward", "--model", withPredictor.toString(), "--tokens", "1,2,3,4,5;6,7,8,9,10",
                "--routing", "predictor", "--out", out.toString()));
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertEquals("[2, 5, 258]", java.util.Arrays.toString(f.tensor("logits").shape()));
            for (int layer : new int[] {1, 3}) {
                int[] routed = f.tensor("layers." + layer + ".routed").toIntArray();
                assertEquals(10, routed.length);
                assertTrue(java.util.Arrays.stream(routed).allMatch(v -> v == 0 || v == 1));
                assertEquals(10, f.tensor("layers." + layer + ".router").toFloatArray().length);
            }
            assertEquals("predictor", f.metadata().get("routing"));
        }
    }

    @Test
    void badInputGetsOneLineAndNoOutput() throws IOException {
        String m = model.toString();
        refused("the prompt is empty", "generate", "--model", m, "--prompt", "");
        refused("longer than the model's max_seq_len 40", "generate", "--model", m, "--prompt", "x".repeat(40));
        refused("--max-tokens 30 need a context of 41", "generate", "--model", m, "--prompt", "x".repeat(10), "--max-tokens", "30");
        refused("predictor.w1.weight", "generate", "--model", m, "--prompt", "x", "--routing", "predictor");
        refused("mod calibrate", "generate", "--model", m, "--prompt", "x", "--routing", "calibrated");
        refused("not causal", "generate", "--model", m, "--prompt", "x", "--routing", "topk");
        refused("--top-p must be in (0, 1]", "generate", "--model", m, "--prompt", "x", "--top-p", "0");
        refused("--max-tokens must be at least 1", "generate", "--model", m, "--prompt", "x", "--max-tokens", "0");
        refused("--warmup-steps must be at least 0", "generate", "--model", m, "--prompt", "x", "--max-tokens", "5", "--warmup-steps", "-1");

        Path shortText = dir.resolve("short.txt");
        Files.writeString(shortText, "too short");
        Path out = dir.resolve("never.safetensors");
        refused("shorter than one sequence of 40 tokens", "calibrate", "--model", m, "--text", shortText.toString(),
                "--out", out.toString());
        refused("cannot read calibration text", "calibrate", "--model", m, "--text", dir.resolve("missing.txt").toString(),
                "--out", out.toString());
        assertFalse(Files.exists(out));
        refused("predictor.w1.weight", "forward", "--model", m, "--tokens", "1,2", "--routing", "predictor",
                "--out", out.toString());
        assertFalse(Files.exists(out));
    }

    @Test
    void aVocabularyWithoutByteTokensIsRefused() {
        Path tiny = dir.resolve("tiny.safetensors");
        assertEquals(0, mod("init", "--preset", "tiny", "--out", tiny.toString()));
        refused("needs a vocabulary of 258", "generate", "--model", tiny.toString(), "--prompt", "x");
    }
}
