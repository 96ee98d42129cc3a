package dev.mod.tornado;

import dev.mod.TestModels;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.RouterWeighting;
import dev.mod.plan.CausalPlan;
import dev.mod.plan.CausalRouting;
import dev.mod.reference.ReferenceKernels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The causal plan on the device against the reference backend's causal plan: prefill then decode steps give the
 * logits and routing decisions of one causal forward over the whole text, routed caches hold exactly the routed
 * positions, rollback works, and a decode step moves only its token ids in and, when asked, its logits out.
 */
class TornadoCausalPlanTest {
    private static final int VOCAB = 50;

    private static Model model(String rule, RouterWeighting g, int kvHeads, long seed) {
        ModelConfig c = TestModels.config(4, kvHeads, 0.25, List.of(1, 3), g);
        Model m = ModelInit.random(c, seed, rule.equals("predictor") ? 8 : 0);
        if (rule.equals("calibrated")) {
            m = m.withCalibration(CausalPlan.calibrate(m, new ReferenceKernels(), TestModels.tokens(2, 32, VOCAB, seed + 1)));
        }
        return m;
    }

    private static CausalRouting routing(String rule) {
        return CausalRouting.of(CausalRouting.Rule.valueOf(rule.toUpperCase()));
    }

    @ParameterizedTest(name = "{0} rule, {1}, kv heads {2}")
    @CsvSource({
            "router, RAW, 2",
            "router, SIGMOID, 4",
            "predictor, SIGMOID, 1",
            "predictor, RAW, 2",
            "calibrated, RAW, 2",
            "calibrated, SIGMOID, 1"})
    void prefillThenDecodeGivesTheLogitsOfOneCausalForward(String rule, RouterWeighting g, int kvHeads) {
        Model m = model(rule, g, kvHeads, 7);
        int t = 40;
        int prompt = 15;
        int[] text = TestModels.tokens(1, t, VOCAB, 11)[0];
        CausalPlan whole = new CausalPlan(m, new ReferenceKernels(), routing(rule), 1, t);
        whole.prefill(0, text);
        float[] want = whole.logits().clone();

        try (TornadoCausalPlan stepped = new TornadoCausalPlan(m, routing(rule), 1, prompt, t, false, null)) {
            stepped.prefill(0, Arrays.copyOf(text, prompt));
            float[] got = new float[t * VOCAB];
            System.arraycopy(stepped.logits(), 0, got, 0, prompt * VOCAB);
            int[][] routed = new int[4][t];
            for (int layer : List.of(1, 3)) {
                System.arraycopy(stepped.routed(layer), 0, routed[layer], 0, prompt);
                float[] r = stepped.routerLogits(layer);
                for (int i = 0; i < prompt; i++) {
                    assertEquals(whole.routerLogits(layer)[i], r[i], 1e-4, "layer " + layer + " router logit " + i);
                }
            }
            for (int i = prompt; i < t; i++) {
                stepped.run(new int[] {0}, new int[] {text[i]}, 1);
                System.arraycopy(stepped.logits(), 0, got, i * VOCAB, VOCAB);
                for (int layer : List.of(1, 3)) {
                    routed[layer][i] = stepped.routed(layer)[0];
                }
            }
            double worst = 0;
            double largest = 0;
            for (int i = 0; i < want.length; i++) {
                worst = Math.max(worst, Math.abs(want[i] - got[i]));
                largest = Math.max(largest, Math.abs(want[i]));
            }
            assertTrue(worst <= 1e-4 * largest, "largest logit difference " + worst + " of " + largest);
            for (int layer : List.of(1, 3)) {
                int[] decisions = Arrays.copyOf(whole.routed(layer), t);
                assertArrayEquals(decisions, routed[layer], "layer " + layer + " decisions");
                int count = Arrays.stream(decisions).sum();
                assertTrue(count > 0 && count < t, "the rule should route some tokens and skip others, routed " + count);
                assertEquals(count, stepped.routedTokens(layer));
                assertEquals(t, stepped.decisions(layer));
                int[] positions = IntStream.range(0, t).filter(i -> decisions[i] == 1).toArray();
                assertArrayEquals(positions, stepped.cachedPositions(layer, 0), "layer " + layer + " caches the routed positions only");
            }
            assertArrayEquals(IntStream.range(0, t).toArray(), stepped.cachedPositions(0, 0), "a dense layer caches every position");
            assertEquals(whole.cacheBytes(), stepped.cacheBytes());
        }
    }
}
