package dev.mod.plan;

import dev.mod.ModException;
import dev.mod.TestModels;
import dev.mod.cpu.CpuKernels;
import dev.mod.model.DType;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.RouterWeighting;
import dev.mod.model.RoutingCalibration;
import dev.mod.reference.ReferenceKernels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The causal plan: chunking does not change results, routed caches hold routed tokens only, calibration, bad input. */
class CausalPlanTest {
    private static final CpuKernels CPU = new CpuKernels(2);
    private static final int VOCAB = 50;

    @AfterAll
    static void close() {
        CPU.close();
    }

    private static Kernels kernels(String name) {
        return name.equals("cpu") ? CPU : new ReferenceKernels();
    }

    private static Model model(String rule, RouterWeighting g, int kvHeads, List<Integer> routed, long seed) {
        return TestModels.causalModel(rule, g, kvHeads, routed, seed);
    }

    private static RoutingRule routing(String rule) {
        return TestModels.routing(rule);
    }

    @ParameterizedTest(name = "{0} kernels, {1} rule, {2}, kv heads {3}, {4} cache")
    @CsvSource({
            "cpu, router, RAW, 2, F32",
            "reference, router, SIGMOID, 4, F32",
            "cpu, predictor, SIGMOID, 1, F32",
            "reference, predictor, RAW, 2, F32",
            "cpu, calibrated, RAW, 2, F32",
            "reference, calibrated, SIGMOID, 1, F32",
            "cpu, router, RAW, 2, BF16",
            "reference, predictor, SIGMOID, 1, BF16",
            "cpu, calibrated, SIGMOID, 4, BF16"})
    void prefillThenDecodeGivesTheLogitsOfOneCausalForward(String kernels, String rule, RouterWeighting g, int kvHeads,
                                                          DType cacheType) {
        Model m = model(rule, g, kvHeads, List.of(1, 3), 7);
        int t = 40;
        int[] text = TestModels.tokens(1, t, VOCAB, 11)[0];

        CausalPlan whole = new CausalPlan(m, kernels(kernels), routing(rule), 1, t, t, cacheType);
        whole.prefill(0, text);
        float[] want = whole.logits().clone();

        CausalPlan stepped = new CausalPlan(m, kernels(kernels), routing(rule), 1, t, t, cacheType);
        int prompt = 15;
        stepped.prefill(0, Arrays.copyOf(text, prompt));
        float[] got = new float[t * VOCAB];
        System.arraycopy(stepped.logits(), 0, got, 0, prompt * VOCAB);
        int[][] routed = new int[4][t];
        for (int layer : List.of(1, 3)) {
            System.arraycopy(stepped.routed(layer), 0, routed[layer], 0, prompt);
        }
        for (int i = prompt; i < t; i++) {
            stepped.run(new int[] {0}, new int[] {text[i]}, 1);
            System.arraycopy(stepped.logits(), 0, got, i * VOCAB, VOCAB);
            for (int layer : List.of(1, 3)) {
                routed[layer][i] = stepped.routed(layer)[0];
            }
        }
        double worst = 0;
        for (int i = 0; i < want.length; i++) {
            worst = Math.max(worst, Math.abs(want[i] - got[i]));
        }
        // A BF16 cache rounds what the two paths compute in different float orders (the prefill's blocked attention
        // against a decode step's): now and then a difference of a float's last bit crosses a BF16 rounding boundary,
        // a step of 2^-9 in one value of a key or value.
        double tolerance = cacheType == DType.BF16 ? 1e-3 : 1e-5;
        assertTrue(worst <= tolerance, "largest logit difference " + worst);
        for (int layer : List.of(1, 3)) {
            assertArrayEquals(Arrays.copyOf(whole.routed(layer), t), routed[layer], "layer " + layer + " decisions");
            int count = Arrays.stream(routed[layer]).sum();
            assertTrue(count > 0 && count < t, "the rule should route some tokens and skip others, routed " + count);
        }
    }

    /**
     * A model whose k and v projections are 16-bit gets a BF16 cache for generation, half the bytes; the cpu backend's
     * decode steps read it as the reference does. An F32 cache on the same model gives slightly different logits
     * (the keys and values are not rounded), so the rounding is really in effect.
     */
    @Test
    void aSixteenBitModelGetsABf16CacheThatCpuAndReferenceReadAlike() {
        Model m = model("router", RouterWeighting.RAW, 2, List.of(1, 3), 12).withMatrixType(DType.BF16);
        assertEquals(DType.BF16, KvCache.typeFor(m));
        assertEquals(DType.F32, KvCache.typeFor(model("router", RouterWeighting.RAW, 2, List.of(1, 3), 12)));
        int t = 37;
        int[] text = TestModels.tokens(1, t, VOCAB, 13)[0];
        float[][] logits = new float[3][];
        CausalPlan[] plans = {new CausalPlan(m, CPU, routing("router"), 1, t, t, KvCache.typeFor(m)),
                new CausalPlan(m, new ReferenceKernels(), routing("router"), 1, t, t, DType.BF16), new CausalPlan(m, CPU, routing("router"), 1, t)};
        for (int p = 0; p < plans.length; p++) {
            plans[p].prefill(0, Arrays.copyOf(text, 20));
            for (int i = 20; i < t; i++) {
                plans[p].run(new int[] {0}, new int[] {text[i]}, 1);
            }
            logits[p] = plans[p].logits().clone();
        }
        assertEquals(DType.BF16, plans[0].cache().type());
        long rows = 0;
        for (int layer = 0; layer < 4; layer++) {
            rows += plans[0].cache().length(layer, 0);
        }
        assertEquals(rows * 2 * m.config().kvDim() * 2, plans[0].cacheBytes(), "two bytes a value");
        double worst = 0;
        double rounding = 0;
        for (int i = 0; i < VOCAB; i++) {
            worst = Math.max(worst, Math.abs(logits[0][i] - logits[1][i]));
            rounding = Math.max(rounding, Math.abs(logits[0][i] - logits[2][i]));
        }
        assertTrue(worst <= 1e-5, "cpu against reference on a BF16 cache: " + worst);
        assertTrue(rounding > 1e-6 && rounding < 0.05, "BF16 against F32 cache: " + rounding);
    }

    /**
     * With one routed layer, the router rule routes exactly the tokens whose logits are the largest m, which is
     * what the top-k plan picks at k = m: the two plans (cache against none) must agree.
     */
    @Test
    void oneRoutedLayerUnderTheRouterRuleMatchesTopKOverTheSameTokens() {
        ModelConfig c = TestModels.config(3, 2, 0.25, List.of(1), RouterWeighting.RAW);
        Model m = TestModels.model(c, 5);
        int t = 24;
        int[] text = TestModels.tokens(1, t, VOCAB, 3)[0];
        CausalPlan causal = new CausalPlan(m, new ReferenceKernels(), RoutingRule.ROUTER, 1, t);
        causal.prefill(0, text);
        int[] positions = java.util.stream.IntStream.range(0, t).filter(i -> causal.routed(1)[i] == 1).toArray();
        int routed = positions.length;
        assertTrue(routed > 1 && routed < t, "routed " + routed);

        Model topK = m.withConfig(c.withRouting((routed + 0.5) / t, List.of(1)));
        ForwardPlan plan = TestModels.run(topK, new int[][] {text});
        assertEquals(routed, plan.capacity());
        assertArrayEquals(positions, plan.selected(1));
        for (int i = 0; i < t * VOCAB; i++) {
            assertEquals(plan.logits()[i], causal.logits()[i], 1e-5, "logit " + i);
        }
    }

    @Test
    void routedLayersCacheOnlyTheTokensRoutedIntoThem() {
        Model m = model("router", RouterWeighting.RAW, 2, List.of(1, 3), 9);
        int t = 30;
        CausalPlan plan = new CausalPlan(m, CPU, routing("router"), 1, t);
        plan.prefill(0, TestModels.tokens(1, t, VOCAB, 4)[0]);
        KvCache cache = plan.cache();
        long rows = 0;
        for (int layer = 0; layer < 4; layer++) {
            if (layer == 1 || layer == 3) {
                int[] flags = plan.routed(layer);
                int[] want = java.util.stream.IntStream.range(0, t).filter(i -> flags[i] == 1).toArray();
                int[] got = new int[cache.length(layer, 0)];
                for (int j = 0; j < got.length; j++) {
                    got[j] = cache.position(layer, 0, j);
                }
                assertArrayEquals(want, got, "layer " + layer + " keeps the positions routed into it");
                assertEquals(want.length / (double) t, plan.routedFraction(layer), 1e-12);
            } else {
                assertEquals(t, cache.length(layer, 0));
            }
            rows += cache.length(layer, 0);
        }
        long bytesPerRow = 2L * m.config().kvDim() * Float.BYTES;
        assertEquals(rows * bytesPerRow, cache.bytes());
        assertEquals(4L * t * bytesPerRow, cache.denseBytes(t));
        assertTrue(cache.bytes() < cache.denseBytes(t));
    }

    @Test
    void truncatingAndRunningAgainGivesTheSameLogits() {
        Model m = model("router", RouterWeighting.SIGMOID, 2, List.of(1, 3), 2);
        int[] text = TestModels.tokens(1, 30, VOCAB, 8)[0];
        CausalPlan plan = new CausalPlan(m, CPU, routing("router"), 1, 30);
        plan.prefill(0, Arrays.copyOf(text, 20));
        long bytes = plan.cache().bytes();
        plan.prefill(0, Arrays.copyOfRange(text, 20, 30));
        float[] first = Arrays.copyOf(plan.logits(), 10 * VOCAB);
        plan.truncate(0, 20);
        assertEquals(20, plan.length(0));
        assertEquals(bytes, plan.cache().bytes());
        plan.prefill(0, Arrays.copyOfRange(text, 20, 30));
        assertArrayEquals(first, Arrays.copyOf(plan.logits(), 10 * VOCAB));
    }

    @Test
    void sequencesInOneChunkDoNotSeeEachOther() {
        Model m = model("router", RouterWeighting.RAW, 2, List.of(1, 3), 4);
        int[][] texts = {TestModels.tokens(1, 9, VOCAB, 1)[0], TestModels.tokens(1, 14, VOCAB, 2)[0]};
        CausalPlan both = new CausalPlan(m, CPU, routing("router"), 2, 23);
        int[] seq = new int[23];
        int[] tok = new int[23];
        for (int i = 0; i < 23; i++) {
            seq[i] = i < 9 ? 0 : 1;
            tok[i] = i < 9 ? texts[0][i] : texts[1][i - 9];
        }
        both.run(seq, tok, 23);
        for (int s = 0; s < 2; s++) {
            CausalPlan alone = new CausalPlan(m, CPU, routing("router"), 1, 14);
            alone.prefill(0, texts[s]);
            int offset = s == 0 ? 0 : 9;
            for (int i = 0; i < texts[s].length * VOCAB; i++) {
                assertEquals(alone.logits()[i], both.logits()[offset * VOCAB + i], 1e-6, "sequence " + s + ", logit " + i);
            }
        }
    }

    @Test
    void calibrationRoutesTheCapacityOfTheCalibrationText() {
        Model m = model("router", RouterWeighting.RAW, 2, List.of(0, 1, 3), 6);
        int[][] text = TestModels.tokens(3, 40, VOCAB, 12);
        RoutingCalibration calibration = CausalPlan.calibrate(m, CPU, text);
        assertEquals(120, calibration.tokens());
        Model calibrated = m.withCalibration(calibration);
        CausalPlan plan = new CausalPlan(calibrated, CPU, routing("calibrated"), 3, 40);
        for (int s = 0; s < 3; s++) {
            plan.prefill(s, text[s]);
        }
        for (int layer : List.of(0, 1, 3)) {
            assertEquals(3 * m.config().capacityTokens(40) / 120.0, plan.routedFraction(layer), 1e-12, "layer " + layer);
        }
    }

    @Test
    void badInputIsRefusedAndLeavesThePlanAsItWas() {
        Model m = model("router", RouterWeighting.RAW, 2, List.of(1, 3), 1);
        CausalPlan plan = new CausalPlan(m, CPU, routing("router"), 2, 70);
        assertTrue(assertThrows(ModException.class, () -> plan.run(new int[] {0, 1, 0}, new int[] {1, 2, 3}, 3))
                .getMessage().contains("not adjacent"));
        assertTrue(assertThrows(ModException.class, () -> plan.prefill(0, new int[65]))
                .getMessage().contains("max_seq_len 64"));
        assertTrue(assertThrows(ModException.class, () -> plan.run(new int[] {0}, new int[] {VOCAB}, 1))
                .getMessage().contains("outside the vocabulary"));
        assertEquals(0, plan.length(0));
        assertEquals(0, plan.cache().bytes());
        assertTrue(assertThrows(ModException.class, () -> new CausalPlan(m, CPU, routing("predictor"), 1, 4))
                .getMessage().contains("predictor.w1.weight"));
        assertTrue(assertThrows(ModException.class, () -> new CausalPlan(m, CPU, routing("calibrated"), 1, 4))
                .getMessage().contains("mod calibrate"));
    }
}
