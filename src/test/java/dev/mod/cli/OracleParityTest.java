package dev.mod.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mod.NumpyOracle;
import dev.mod.io.SafetensorsFile;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * `mod forward` against an independent NumPy transcription of the spec (src/test/python/spec_oracle.py),
 * on model files written by that script's own safetensors writer, for every backend (tornado where TornadoVM is): the selections must
 * be identical and the logits within 1e-4 of the largest logit. Runs where a Python 3 with NumPy is found
 * ({@link NumpyOracle}); skipped with the reason printed otherwise.
 */
class OracleParityTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            // name | config | dtype | batch | seq
            "GQA, raw, two routed layers | {\"vocab_size\": 40, \"dim\": 24, \"n_layers\": 3, \"n_heads\": 6, \"n_kv_heads\": 2, \"hidden_dim\": 40, \"max_seq_len\": 32, \"capacity\": 0.3, \"routed_layers\": [1, 2], \"router_weighting\": \"raw\"} | F32 | 2 | 10",
            "sigmoid, 12.5%, other eps and theta | {\"vocab_size\": 30, \"dim\": 16, \"n_layers\": 2, \"n_heads\": 2, \"hidden_dim\": 24, \"max_seq_len\": 64, \"capacity\": 0.125, \"routed_layers\": [0], \"router_weighting\": \"sigmoid\", \"norm_eps\": 1e-6, \"rope_theta\": 500.0} | F32 | 3 | 17",
            "dense only | {\"vocab_size\": 30, \"dim\": 16, \"n_layers\": 2, \"n_heads\": 4, \"n_kv_heads\": 1, \"hidden_dim\": 24, \"max_seq_len\": 16, \"capacity\": 1.0, \"routed_layers\": []} | F32 | 1 | 9",
            "F16 storage, default routing | {\"vocab_size\": 30, \"dim\": 16, \"n_layers\": 4, \"n_heads\": 4, \"n_kv_heads\": 2, \"hidden_dim\": 24, \"max_seq_len\": 32, \"capacity\": 0.25} | F16 | 2 | 12",
            "BF16 storage, capacity 1 | {\"vocab_size\": 30, \"dim\": 16, \"n_layers\": 2, \"n_heads\": 4, \"hidden_dim\": 24, \"max_seq_len\": 32, \"capacity\": 1.0, \"router_weighting\": \"sigmoid\"} | BF16 | 2 | 7",
            "MoE, 3 experts at 30% | {\"vocab_size\": 30, \"dim\": 16, \"n_layers\": 2, \"n_heads\": 4, \"hidden_dim\": 24, \"max_seq_len\": 32, \"capacity\": 1.0, \"routed_layers\": [], \"experts\": {\"count\": 3, \"no_ops\": 0, \"capacity\": 0.3, \"hidden_dim\": 20}} | F32 | 2 | 13",
            "staged MoDE, raw | {\"vocab_size\": 40, \"dim\": 24, \"n_layers\": 3, \"n_heads\": 6, \"n_kv_heads\": 2, \"hidden_dim\": 40, \"max_seq_len\": 32, \"capacity\": 0.5, \"routed_layers\": [1, 2], \"experts\": {\"count\": 2, \"no_ops\": 0, \"capacity\": 0.45, \"hidden_dim\": 16}} | F32 | 2 | 17",
            "integrated MoDE, BF16 | {\"vocab_size\": 30, \"dim\": 16, \"n_layers\": 2, \"n_heads\": 4, \"hidden_dim\": 24, \"max_seq_len\": 32, \"capacity\": 1.0, \"routed_layers\": [], \"experts\": {\"count\": 2, \"no_ops\": 2, \"capacity\": 0.25, \"hidden_dim\": 24}} | BF16 | 3 | 11"})
    void forwardMatchesTheNumpySpec(String name, String config, String dtype, int batch, int seqLen)
            throws IOException, InterruptedException {
        check(name, config, dtype, batch, seqLen, "topk");
    }

    /** The causal router rule, recomputed by the oracle over whole sequences without a cache. */
    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "GQA, raw, two routed layers | {\"vocab_size\": 40, \"dim\": 24, \"n_layers\": 3, \"n_heads\": 6, \"n_kv_heads\": 2, \"hidden_dim\": 40, \"max_seq_len\": 32, \"capacity\": 0.3, \"routed_layers\": [1, 2], \"router_weighting\": \"raw\"} | F32 | 2 | 13",
            "sigmoid, three routed layers | {\"vocab_size\": 30, \"dim\": 16, \"n_layers\": 4, \"n_heads\": 4, \"n_kv_heads\": 1, \"hidden_dim\": 24, \"max_seq_len\": 64, \"capacity\": 0.125, \"routed_layers\": [0, 2, 3], \"router_weighting\": \"sigmoid\"} | BF16 | 3 | 21"})
    void causalRouterRuleMatchesTheNumpySpec(String name, String config, String dtype, int batch, int seqLen)
            throws IOException, InterruptedException {
        check(name, config, dtype, batch, seqLen, "router");
    }

    private void check(String name, String config, String dtype, int batch, int seqLen, String routing)
            throws IOException, InterruptedException {
        assumeTrue(NumpyOracle.python() != null, "no Python 3 with NumPy");
        JsonNode cfg = JSON.readTree(config);
        Random random = new Random(name.hashCode());
        int[][] tokens = new int[batch][seqLen];
        StringBuilder tokenText = new StringBuilder();
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < seqLen; t++) {
                tokens[b][t] = random.nextInt(cfg.get("vocab_size").intValue());
                tokenText.append(t == 0 ? (b == 0 ? "" : ";") : ",").append(tokens[b][t]);
            }
        }
        var c = JSON.createObjectNode();
        c.setAll((com.fasterxml.jackson.databind.node.ObjectNode) cfg);
        c.putIfAbsent("n_kv_heads", cfg.get("n_heads"));
        c.putIfAbsent("norm_eps", JSON.getNodeFactory().numberNode(1e-5));
        c.putIfAbsent("rope_theta", JSON.getNodeFactory().numberNode(10000.0));
        c.putIfAbsent("router_weighting", JSON.getNodeFactory().textNode("raw"));
        if (!c.has("routed_layers")) {
            var odd = c.putArray("routed_layers");
            for (int i = 1; i < cfg.get("n_layers").intValue(); i += 2) {
                odd.add(i);
            }
        }
        var testCase = JSON.createObjectNode();
        testCase.set("config", c);
        testCase.put("seed", Math.abs(name.hashCode()));
        testCase.put("dtype", dtype);
        testCase.set("tokens", JSON.valueToTree(tokens));
        testCase.put("routing", routing);
        Path casePath = dir.resolve("case.json");
        JSON.writeValue(casePath.toFile(), testCase);
        Path model = dir.resolve("model.safetensors");
        Path expectedPath = dir.resolve("expected.json");
        NumpyOracle.run(casePath.toString(), model.toString(), expectedPath.toString());

        JsonNode expected = JSON.readTree(expectedPath.toFile());
        // the tornado backend refuses models with experts (MixtureOfExpertsTest has that refusal's test)
        for (String backend : c.has("experts") ? List.of("reference", "cpu") : backends()) {
            Path out = dir.resolve(backend + ".safetensors");
            assertEquals(0, Main.run("forward", "--model", model.toString(), "--tokens", tokenText.toString(),
                    "--out", out.toString(), "--backend", backend, "--routing", routing));
            compare(backend, expected, out, c.get("routed_layers").size(), batch, seqLen, routing);
        }
    }

    /** reference and cpu, and tornado in builds and JVMs that have TornadoVM (TornadoParityTest says when they do not). */
    private static List<String> backends() {
        try {
            Class.forName("dev.mod.tornado.TornadoForwardPlan");
            Class.forName("uk.ac.manchester.tornado.api.TaskGraph");
            return List.of("reference", "cpu", "tornado");
        } catch (ClassNotFoundException | NoClassDefFoundError e) {
            return List.of("reference", "cpu");
        }
    }

    private static void compare(String backend, JsonNode expected, Path out, int routedLayers, int batch, int seqLen,
                                String routing) throws IOException {
        try (SafetensorsFile result = SafetensorsFile.open(out)) {
            float[] logits = result.tensor("logits").toFloatArray();
            JsonNode wantLogits = expected.get("logits");
            assertEquals(wantLogits.size(), logits.length);
            double largest = 0;
            double worst = 0;
            for (int i = 0; i < logits.length; i++) {
                largest = Math.max(largest, Math.abs(wantLogits.get(i).doubleValue()));
                worst = Math.max(worst, Math.abs(logits[i] - wantLogits.get(i).doubleValue()));
            }
            assertEquals(0, worst / largest, 1e-4, backend + ": relative error of the logits");
            var layers = expected.get("selected").fields();
            while (layers.hasNext()) {
                var layer = layers.next();
                int[][] positions = JSON.treeToValue(layer.getValue(), int[][].class);
                String what = backend + ": layer " + layer.getKey() + " selection";
                if (routing.equals("topk")) {
                    int[] want = Arrays.stream(positions).flatMapToInt(Arrays::stream).toArray();
                    assertArrayEquals(want, result.tensor("layers." + layer.getKey() + ".selected").toIntArray(), what);
                } else {
                    int[] want = new int[batch * seqLen];
                    for (int b = 0; b < batch; b++) {
                        for (int t : positions[b]) {
                            want[b * seqLen + t] = 1;
                        }
                    }
                    assertArrayEquals(want, result.tensor("layers." + layer.getKey() + ".routed").toIntArray(), what);
                }
            }
            assertEquals(routedLayers, expected.get("selected").size());
            var experts = expected.get("experts").fields();
            while (experts.hasNext()) {
                var layer = experts.next();
                int[][][] chosen = JSON.treeToValue(layer.getValue(), int[][][].class); // [sequence][expert][rows]
                for (int e = 0; e < chosen[0].length; e++) {
                    int expert = e;
                    int[] want = Arrays.stream(chosen).flatMapToInt(sequence -> Arrays.stream(sequence[expert])).toArray();
                    assertArrayEquals(want, result.tensor("layers." + layer.getKey() + ".experts." + e + ".selected").toIntArray(),
                            backend + ": layer " + layer.getKey() + ", expert " + e + " selection");
                }
            }
        }
    }
}
