package dev.mod.train;

import dev.mod.cpu.CpuTrainingKernels;
import dev.mod.TestModels;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.RouterWeighting;
import dev.mod.plan.ForwardPlan;
import dev.mod.reference.ReferenceKernels;
import dev.mod.plan.RoutingRule;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The whole training step against central finite differences of its own loss, on tiny models: every
 * parameter tensor (the router's and the predictor's included), dense and MoD, both router weightings,
 * GQA. And the training forward pass against the inference plan of the reference backend.
 */
class TrainingGradientTest {
    private static final int B = 2;
    private static final int T = 8;
    private static final double PREDICTOR_WEIGHT = 0.5;

    private static ModelConfig config(String kind, RouterWeighting g, int kvHeads) {
        List<Integer> routed = kind.equals("dense") ? List.of() : List.of(1, 2);
        return TestModels.config(3, kvHeads, 0.5, routed, g);
    }

    @ParameterizedTest(name = "{0}, {1}, kv heads {2}")
    @CsvSource({"dense, RAW, 4", "mod, RAW, 2", "mod, SIGMOID, 1", "mod, RAW, 4"})
    void gradientsMatchFiniteDifferences(String kind, RouterWeighting g, int kvHeads) {
        ModelConfig c = config(kind, g, kvHeads);
        Model model = ModelInit.random(c, 3, kind.equals("dense") ? 0 : 6);
        Parameters params = Parameters.of(model);
        Parameters grads = params.zerosLike();
        int[][] input = TestModels.tokens(B, T, c.vocabSize(), 5);
        int[][] target = TestModels.tokens(B, T, c.vocabSize(), 6);
        try (TrainingPlan plan = new TrainingPlan(c, params, grads, new TrainingPlan.AuxWeights(0.3, PREDICTOR_WEIGHT), RoutingRule.TOP_K, B, T, new CpuTrainingKernels(2))) {
            plan.forward(input, target);
            plan.backward();
            int[][] selected = selections(plan, c);
            SplittableRandom random = new SplittableRandom(9);
            int checked = 0;
            int skipped = 0;
            double worst = 0;
            for (String name : params.names()) {
                float[] w = params.get(name);
                for (int trial = 0; trial < 6; trial++) {
                    int i = random.nextInt(w.length);
                    float saved = w[i];
                    float eps = 1e-2f * Math.max(1f, Math.abs(saved));
                    // the predictor reads a stop-gradient of the residual stream: its loss reaches its own weights only
                    boolean predictor = name.contains(".predictor.");
                    w[i] = saved + eps;
                    plan.weightsChanged();
                    double plus = lossOf(plan, plan.forward(input, target), predictor);
                    boolean same = Arrays.deepEquals(selected, selections(plan, c));
                    w[i] = saved - eps;
                    plan.weightsChanged();
                    double minus = lossOf(plan, plan.forward(input, target), predictor);
                    same &= Arrays.deepEquals(selected, selections(plan, c));
                    w[i] = saved;
                    plan.weightsChanged();
                    if (!same) {
                        skipped++; // the perturbation moved a top-k choice: the loss is not differentiable there
                        continue;
                    }
                    double numeric = (plus - minus) / (2.0 * eps);
                    double analytic = grads.get(name)[i];
                    double error = Math.abs(numeric - analytic) / Math.max(1e-3, Math.abs(numeric) + Math.abs(analytic));
                    worst = Math.max(worst, error);
                    assertTrue(error < 2e-2, name + "[" + i + "]: analytic " + analytic + ", numeric " + numeric);
                    checked++;
                }
            }
            assertTrue(checked > 5 * skipped, "checked " + checked + ", skipped " + skipped);
            System.out.printf("%s %s kv%d: %d gradient entries checked (%d skipped at top-k boundaries), worst relative error %.2e%n",
                    kind, g, kvHeads, checked, skipped, worst);
        }
    }

    private static double lossOf(TrainingPlan plan, double loss, boolean predictorWeight) {
        return predictorWeight ? loss : loss - PREDICTOR_WEIGHT * plan.predictorLoss();
    }

    private static int[][] selections(TrainingPlan plan, ModelConfig c) {
        return c.routedLayers().stream().map(l -> plan.selected(l).clone()).toArray(int[][]::new);
    }

    @ParameterizedTest(name = "{0}, {1}")
    @CsvSource({"dense, RAW", "mod, SIGMOID"})
    void theTrainingForwardIsTheInferenceForward(String kind, RouterWeighting g) {
        ModelConfig c = config(kind, g, 2);
        Model model = ModelInit.random(c, 4);
        Parameters params = Parameters.of(model);
        int[][] input = TestModels.tokens(B, T, c.vocabSize(), 7);
        int[][] target = TestModels.tokens(B, T, c.vocabSize(), 8);
        ForwardPlan reference = new ForwardPlan(model, new ReferenceKernels(), B, T);
        reference.run(input);
        double want = 0;
        float[] logits = reference.logits();
        int v = c.vocabSize();
        for (int r = 0; r < B * T; r++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int i = 0; i < v; i++) {
                max = Math.max(max, logits[r * v + i]);
            }
            double sum = 0;
            for (int i = 0; i < v; i++) {
                sum += Math.exp(logits[r * v + i] - max);
            }
            want -= logits[r * v + target[r / T][r % T]] - max - Math.log(sum);
        }
        want /= B * T;
        try (TrainingPlan plan = new TrainingPlan(c, params, params.zerosLike(), new TrainingPlan.AuxWeights(0, 0), RoutingRule.TOP_K, B, T, new CpuTrainingKernels(2))) {
            double loss = plan.forward(input, target);
            for (int layer : c.routedLayers()) {
                assertArrayEquals(reference.selected(layer), plan.selected(layer), "layer " + layer);
            }
            for (int i = 0; i < reference.hidden().length; i++) {
                assertEquals(reference.hidden()[i], plan.hidden()[i], 1e-4, "residual stream, element " + i);
            }
            assertEquals(want, loss, 1e-5);
        }
    }
}
