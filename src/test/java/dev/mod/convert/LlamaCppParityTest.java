package dev.mod.convert;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mod.model.DType;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.RouterWeighting;
import dev.mod.plan.ForwardPlan;
import dev.mod.reference.ReferenceKernels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The exported GGUF file run by llama.cpp itself (node-llama-cpp's prebuilt CPU build, src/test/llama-cpp): its
 * logits against the reference backend's, and its tokenizer against the byte tokenizer. Skipped, with the reason
 * printed, where node or `npm install --omit=optional --prefix src/test/llama-cpp` (which .ci/run does) is missing.
 */
class LlamaCppParityTest {
    private static final Path HARNESS = Path.of("src/test/llama-cpp");

    @TempDir
    Path dir;

    private static void assumeLlamaCpp() {
        boolean installed = Files.isDirectory(HARNESS.resolve("node_modules/node-llama-cpp"));
        boolean node;
        try {
            Process p = new ProcessBuilder("node", "--version").redirectErrorStream(true).start();
            node = p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException | InterruptedException e) {
            node = false;
        }
        if (!installed || !node) {
            System.out.println("llama.cpp parity skipped: " + (node ? "" : "no node on PATH; ")
                    + (installed ? "" : "run npm install --omit=optional --prefix src/test/llama-cpp"));
        }
        assumeTrue(installed && node, "llama.cpp (node-llama-cpp) not installed");
    }

    private static JsonNode llamaCpp(Path gguf, int[] ids, String kvType, String text) throws IOException, InterruptedException {
        String idList = java.util.Arrays.stream(ids).mapToObj(Integer::toString).collect(Collectors.joining(","));
        Process p = new ProcessBuilder("node", HARNESS.resolve("logits.mjs").toAbsolutePath().toString(), gguf.toAbsolutePath().toString(),
                idList, kvType, text).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "llama.cpp timed out");
        assertEquals(0, p.exitValue(), "llama.cpp failed: " + out);
        return new ObjectMapper().readTree(out);
    }

    /** Largest |llama.cpp - reference| over every logit, and how many positions agree on the argmax. */
    private static double[] compare(JsonNode rows, float[] reference, int vocab) {
        double worst = 0;
        int argmaxEqual = 0;
        for (int t = 0; t < rows.size(); t++) {
            int best = 0;
            int bestRef = 0;
            for (int v = 0; v < vocab; v++) {
                double value = rows.get(t).get(v).asDouble();
                worst = Math.max(worst, Math.abs(value - reference[t * vocab + v]));
                best = value > rows.get(t).get(best).asDouble() ? v : best;
                bestRef = reference[t * vocab + v] > reference[t * vocab + bestRef] ? v : bestRef;
            }
            argmaxEqual += best == bestRef ? 1 : 0;
        }
        return new double[] {worst, argmaxEqual};
    }

    @Test
    void llamaCppComputesTheExportedModelAndTokenizesTextIntoItsBytes() throws IOException, InterruptedException {
        assumeLlamaCpp();
        ModelConfig c = new ModelConfig(258, 64, 3, 8, 2, 160, 1e-5, 10000.0, 512, 1.0, List.of(), RouterWeighting.RAW);
        int t = 200;
        int[] ids = new int[t];
        SplittableRandom random = new SplittableRandom(4);
        ids[0] = 256;
        for (int i = 1; i < t; i++) {
            ids[i] = random.nextInt(256);
        }
        String text = "public static void main(String[] args) { // naïve → ✓\n\treturn; }";
        List<String> report = new ArrayList<>();
        for (DType type : List.of(DType.F32, DType.BF16)) {
            Model model = ModelInit.random(c, 9, 0).withMatrixType(type);
            Path gguf = dir.resolve(type + ".gguf");
            GgufExport.write(model, "parity", gguf);
            ForwardPlan plan = new ForwardPlan(model, new ReferenceKernels(), 1, t);
            plan.run(new int[][] {ids});
            JsonNode out = llamaCpp(gguf, ids, "F32", text);
            double[] f32Cache = compare(out.get("logits"), plan.logits(), c.vocabSize());
            report.add(String.format("%s weights: logits within %.2e, argmax equal at %d of %d", type, f32Cache[0], (int) f32Cache[1], t));
            if (type == DType.F32) {
                // the same computation: only float rounding between the two engines
                assertTrue(f32Cache[0] < 1e-4, report.getLast());
                assertEquals(t, (int) f32Cache[1], report.getLast());
                byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
                JsonNode tokens = out.get("tokens");
                assertEquals(bytes.length, tokens.size(), "one token per byte: " + tokens);
                for (int i = 0; i < bytes.length; i++) {
                    assertEquals(bytes[i] & 0xFF, tokens.get(i).asInt(), "token " + i);
                }
                assertEquals(text, out.get("detokenized").asText());
                assertEquals(256, out.get("bos").asInt());
                assertEquals(257, out.get("eos").asInt());
            } else {
                // llama.cpp rounds activations to BF16 before products with BF16 weights; this engine keeps them in F32
                assertTrue(f32Cache[0] < 0.1, report.getLast());
            }
        }
        System.out.println("llama.cpp against the reference backend, T = " + t + ": " + String.join("; ", report));
    }
}
