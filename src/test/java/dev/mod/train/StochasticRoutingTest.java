package dev.mod.train;

import dev.mod.cpu.CpuTrainingKernels;
import dev.mod.TestModels;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.Rng;
import dev.mod.model.RouterWeighting;
import dev.mod.plan.RoutingRule;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The controls: top-k over random scores, drawn per batch, reproducible from the draw; uniform scores with the router still
 * weighting the outputs, or the paper's Gaussian router weights, which alone weight them.
 */
class StochasticRoutingTest {
    private static final int B = 4;
    private static final int T = 16;

    @Test
    void choicesAreUniformAndFollowTheDraw() {
        ModelConfig c = TestModels.config(2, 4, 0.25, List.of(1), RouterWeighting.RAW);
        Model model = ModelInit.random(c, 3, 0);
        Parameters params = Parameters.of(model);
        int[][] input = TestModels.tokens(B, T, c.vocabSize(), 5);
        int[][] target = TestModels.tokens(B, T, c.vocabSize(), 6);
        int k = c.capacityTokens(T);
        try (TrainingPlan random = new TrainingPlan(c, params, params.zerosLike(), new TrainingPlan.AuxWeights(0, 0),
                RoutingRule.STOCHASTIC, B, T, new CpuTrainingKernels(2));
             TrainingPlan learned = new TrainingPlan(c, params, params.zerosLike(), new TrainingPlan.AuxWeights(0, 0),
                     RoutingRule.TOP_K, B, T, new CpuTrainingKernels(2))) {
            double loss = random.forward(input, target, 5);
            int[] first = random.selected(1).clone();
            assertEquals(loss, random.forward(input, target, 5), "the same draw, the same choices and loss");
            assertArrayEquals(first, random.selected(1));
            learned.forward(input, target, 5);
            int[] byRouter = learned.selected(1).clone();
            learned.forward(input, target, 6);
            assertArrayEquals(byRouter, learned.selected(1), "learned routing draws nothing");
            int[] counts = new int[T];
            int draws = 400;
            int differing = 0;
            for (int draw = 0; draw < draws; draw++) {
                random.forward(input, target, draw);
                int[] sel = random.selected(1);
                differing += java.util.Arrays.equals(sel, byRouter) ? 0 : 1;
                for (int b = 0; b < B; b++) {
                    for (int j = 0; j < k; j++) {
                        int pos = sel[b * k + j];
                        assertTrue(pos >= 0 && pos < T && (j == 0 || pos > sel[b * k + j - 1]), "k distinct positions, ascending");
                        counts[pos]++;
                    }
                }
            }
            assertEquals(draws, differing, "never the router's choice");
            double expected = (double) draws * B * k / T;
            for (int pos = 0; pos < T; pos++) {
                // binomial(1600, 0.25): sd about 17; 6 sd is a bug, not bad luck
                assertTrue(Math.abs(counts[pos] - expected) < 6 * Math.sqrt(expected * (1 - (double) k / T)),
                        "position " + pos + " chosen " + counts[pos] + " times, expected about " + expected);
            }
            random.forward(input, target, 7);
            assertFalse(java.util.Arrays.equals(first, random.selected(1)), "another draw, other choices");
        }
    }

    @Test
    void theGaussianControlRoutesTheTopKOfItsSamplesAndTheRouterTakesNoPart() {
        ModelConfig c = TestModels.config(2, 4, 0.25, List.of(1), RouterWeighting.RAW);
        Parameters params = Parameters.of(ModelInit.random(c, 3, 0));
        int[][] input = TestModels.tokens(B, T, c.vocabSize(), 5);
        int[][] target = TestModels.tokens(B, T, c.vocabSize(), 6);
        int k = c.capacityTokens(T);
        String router = "layers.1.router.weight";
        Parameters gaussianGrads = params.zerosLike();
        Parameters uniformGrads = params.zerosLike();
        try (TrainingPlan gaussian = new TrainingPlan(c, params, gaussianGrads, new TrainingPlan.AuxWeights(0, 0),
                RoutingRule.GAUSSIAN, B, T, new CpuTrainingKernels(2));
             TrainingPlan uniform = new TrainingPlan(c, params, uniformGrads, new TrainingPlan.AuxWeights(0, 0),
                     RoutingRule.STOCHASTIC, B, T, new CpuTrainingKernels(2))) {
            double loss = gaussian.forward(input, target, 9);
            int[] sel = gaussian.selected(1);
            for (int b = 0; b < B; b++) {
                int seq = b;
                Integer[] order = new Integer[T];
                for (int t = 0; t < T; t++) {
                    order[t] = t;
                }
                java.util.Arrays.sort(order, (x, y) -> Float.compare(Rng.gaussian(9, 1, seq * T + y), Rng.gaussian(9, 1, seq * T + x)));
                int[] want = java.util.Arrays.stream(order, 0, k).mapToInt(Integer::intValue).sorted().toArray();
                assertArrayEquals(want, java.util.Arrays.copyOfRange(sel, b * k, (b + 1) * k), "sequence " + b + ": the top-k of the samples");
            }
            gaussian.backward();
            for (float g : gaussianGrads.get(router)) {
                assertEquals(0f, g, "no gradient reaches the router");
            }
            double uniformLoss = uniform.forward(input, target, 9);
            uniform.backward();
            boolean reached = false;
            for (float g : uniformGrads.get(router)) {
                reached |= g != 0;
            }
            assertTrue(reached, "the uniform control's router weights the outputs and has a gradient");

            float[] w = params.get(router);
            for (int i = 0; i < w.length; i++) {
                w[i] += 0.5f * (i % 3 - 1);
            }
            assertEquals(loss, gaussian.forward(input, target, 9), "other router weights, the same loss bit for bit");
            assertTrue(uniform.forward(input, target, 9) != uniformLoss, "the uniform control's loss follows the router");
        }
    }

    @Test
    void gaussianSamplesHaveAStandardNormalsMomentsAndFollowTheDraw() {
        int n = 200_000;
        double sum = 0;
        double squares = 0;
        double fourth = 0;
        int beyondTwo = 0;
        for (int i = 0; i < n; i++) {
            double x = Rng.gaussian(4, 2, i);
            assertTrue(Math.abs(x) <= 6, "Irwin-Hall samples stay within 6");
            sum += x;
            squares += x * x;
            fourth += x * x * x * x;
            beyondTwo += Math.abs(x) > 2 ? 1 : 0;
        }
        double mean = sum / n;
        double variance = squares / n - mean * mean;
        assertEquals(0, mean, 0.01);
        assertEquals(1, variance, 0.01);
        assertEquals(2.9, fourth / n, 0.1, "the kurtosis of 12 uniforms' sum: 3 - 1.2 / 12");
        assertEquals(0.0446, (double) beyondTwo / n, 0.002, "P(|x| > 2): Irwin-Hall's 0.0446 (a standard normal's 0.0455)");
        assertEquals(Rng.gaussian(4, 2, 17), Rng.gaussian(4, 2, 17));
        assertTrue(Rng.gaussian(4, 2, 17) != Rng.gaussian(5, 2, 17) || Rng.gaussian(4, 2, 18) != Rng.gaussian(5, 2, 18));
    }
}
