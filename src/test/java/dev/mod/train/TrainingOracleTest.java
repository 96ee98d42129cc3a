package dev.mod.train;

import dev.mod.cpu.CpuTrainingKernels;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mod.NumpyOracle;
import dev.mod.TestModels;
import dev.mod.io.ModelFile;
import dev.mod.model.Model;
import dev.mod.plan.RoutingRule;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The training step's gradients against central finite differences in double precision: the NumPy
 * transcription of the spec (float64 throughout) differentiates the mean next-token cross-entropy of a
 * tiny model numerically, for entries of every parameter tensor (the routers' included), and the Java
 * step's analytic gradients (float kernels) must agree with them.
 */
class TrainingOracleTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "dense | {\"vocab_size\": 30, \"dim\": 16, \"n_layers\": 2, \"n_heads\": 4, \"n_kv_heads\": 4, \"hidden_dim\": 24, \"max_seq_len\": 16, \"capacity\": 1.0, \"routed_layers\": [], \"router_weighting\": \"raw\", \"norm_eps\": 1e-5, \"rope_theta\": 10000.0}",
            "MoD, raw, GQA | {\"vocab_size\": 30, \"dim\": 16, \"n_layers\": 3, \"n_heads\": 4, \"n_kv_heads\": 2, \"hidden_dim\": 24, \"max_seq_len\": 16, \"capacity\": 0.5, \"routed_layers\": [1, 2], \"router_weighting\": \"raw\", \"norm_eps\": 1e-5, \"rope_theta\": 10000.0}",
            "MoD, sigmoid | {\"vocab_size\": 30, \"dim\": 16, \"n_layers\": 2, \"n_heads\": 2, \"n_kv_heads\": 1, \"hidden_dim\": 24, \"max_seq_len\": 16, \"capacity\": 0.375, \"routed_layers\": [0], \"router_weighting\": \"sigmoid\", \"norm_eps\": 1e-5, \"rope_theta\": 500.0}",
            "integrated MoDE: 3 experts and a no-op at 40% | {\"vocab_size\": 30, \"dim\": 16, \"n_layers\": 2, \"n_heads\": 4, \"n_kv_heads\": 2, \"hidden_dim\": 24, \"max_seq_len\": 16, \"capacity\": 1.0, \"routed_layers\": [], \"router_weighting\": \"raw\", \"norm_eps\": 1e-5, \"rope_theta\": 10000.0, \"experts\": {\"count\": 3, \"no_ops\": 1, \"capacity\": 0.4, \"hidden_dim\": 12}}",
            "staged MoDE, sigmoid: 2 experts at 50% of the routed rows | {\"vocab_size\": 30, \"dim\": 16, \"n_layers\": 3, \"n_heads\": 2, \"n_kv_heads\": 1, \"hidden_dim\": 24, \"max_seq_len\": 16, \"capacity\": 0.5, \"routed_layers\": [1], \"router_weighting\": \"sigmoid\", \"norm_eps\": 1e-5, \"rope_theta\": 10000.0, \"experts\": {\"count\": 2, \"no_ops\": 0, \"capacity\": 0.5, \"hidden_dim\": 12}}"})
    void gradientsMatchDoublePrecisionFiniteDifferences(String name, String config) throws IOException, InterruptedException {
        int batch = 2;
        int seqLen = 8;
        JsonNode c = JSON.readTree(config);
        int vocab = c.get("vocab_size").intValue();
        int[][] tokens = TestModels.tokens(batch, seqLen, vocab, name.hashCode());
        int[][] targets = TestModels.tokens(batch, seqLen, vocab, name.hashCode() + 1);
        Model shapes = TestModels.model(dev.mod.model.ModelConfig.fromJson(config), 0);
        ObjectNode testCase = JSON.createObjectNode();
        testCase.set("config", c);
        testCase.put("seed", Math.abs(name.hashCode()));
        testCase.put("dtype", "F32");
        testCase.set("tokens", JSON.valueToTree(tokens));
        testCase.set("targets", JSON.valueToTree(targets));
        ArrayNode checks = testCase.putArray("checks");
        SplittableRandom random = new SplittableRandom(3);
        for (String tensor : shapes.config().tensorShapes().keySet()) {
            long size = dev.mod.model.Tensor.numel(shapes.config().tensorShapes().get(tensor));
            for (int i = 0; i < 4; i++) {
                checks.addArray().add(tensor).add(random.nextInt((int) size));
            }
        }
        Path casePath = dir.resolve("case.json");
        Path modelPath = dir.resolve("model.safetensors");
        Path expectedPath = dir.resolve("expected.json");
        JSON.writeValue(casePath.toFile(), testCase);
        NumpyOracle.run("gradcheck", casePath.toString(), modelPath.toString(), expectedPath.toString());
        JsonNode expected = JSON.readTree(expectedPath.toFile());

        try (Model model = ModelFile.load(modelPath)) {
            Parameters params = Parameters.of(model);
            Parameters grads = params.zerosLike();
            try (TrainingPlan plan = new TrainingPlan(model.config(), params, grads, new TrainingPlan.AuxWeights(0, 0), RoutingRule.TOP_K,
                    batch, seqLen, new CpuTrainingKernels(2))) {
                assertEquals(expected.get("loss").asDouble(), plan.forward(tokens, targets), 1e-5, "loss");
                plan.backward();
            }
            double worst = 0;
            for (int i = 0; i < checks.size(); i++) {
                String tensor = checks.get(i).get(0).asText();
                int index = checks.get(i).get(1).asInt();
                double numeric = expected.get("grads").get(i).asDouble();
                double analytic = grads.get(tensor)[index];
                double error = Math.abs(numeric - analytic) / Math.max(1e-4, Math.abs(numeric) + Math.abs(analytic));
                worst = Math.max(worst, error);
                assertTrue(error < 1e-3, tensor + "[" + index + "]: analytic " + analytic + ", float64 numeric " + numeric);
            }
            System.out.printf("%s: %d gradient entries against float64 finite differences, worst relative error %.1e%n",
                    name, checks.size(), worst);
        }
    }
}
