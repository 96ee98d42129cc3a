package dev.mod.train;

import dev.mod.cpu.CpuTrainingKernels;
import dev.mod.TestModels;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.RouterWeighting;
import dev.mod.plan.RoutingRule;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The paper's control: top-k over random scores, drawn per batch, reproducible from the draw. */
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
}
