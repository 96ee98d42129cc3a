package dev.mod.tornado;

import dev.mod.OclgrindLogCheck;
import dev.mod.TestModels;
import dev.mod.model.Experts;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.RouterWeighting;
import dev.mod.plan.CausalPlan;
import dev.mod.plan.RoutingRule;
import dev.mod.reference.ReferenceKernels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
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
@ExtendWith(OclgrindLogCheck.class)
class TornadoCausalPlanTest {
    private static final int VOCAB = 50;

    private static Model model(String rule, RouterWeighting g, int kvHeads, long seed) {
        return TestModels.causalModel(rule, g, kvHeads, List.of(1, 3), seed);
    }

    private static RoutingRule routing(String rule) {
        return TestModels.routing(rule);
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

    /**
     * The GPU layouts of the products, run on the CPU device: tiled (a plan for chunks of up to 12 rows) and vector (at
     * most 4 rows, so the prompt comes in chunks of 4), where a routed layer's rows are known only on the device.
     */
    @ParameterizedTest(name = "{0} layout")
    @CsvSource({"tiled, 12", "vector, 4"})
    void theGpuLayoutsGiveTheReferenceLogitsToo(String layout, int chunk) {
        Model m = model("router", RouterWeighting.SIGMOID, 2, 13);
        int t = 24;
        int[] text = TestModels.tokens(1, t, VOCAB, 17)[0];
        CausalPlan whole = new CausalPlan(m, new ReferenceKernels(), routing("router"), 1, t);
        whole.prefill(0, text);
        System.setProperty("mod.tornado.matmul", layout);
        try (TornadoCausalPlan plan = new TornadoCausalPlan(m, routing("router"), 1, chunk, t, false, null)) {
            float[] got = new float[t * VOCAB];
            for (int at = 0; at < t; at += chunk) {
                int n = Math.min(chunk, t - at);
                plan.prefill(0, Arrays.copyOfRange(text, at, at + n));
                System.arraycopy(plan.logits(), 0, got, at * VOCAB, n * VOCAB);
            }
            assertClose(whole.logits(), got, t);
            for (int layer : List.of(1, 3)) {
                int[] decisions = Arrays.copyOf(whole.routed(layer), t);
                assertArrayEquals(IntStream.range(0, t).filter(i -> decisions[i] == 1).toArray(), plan.cachedPositions(layer, 0));
            }
        } finally {
            System.clearProperty("mod.tornado.matmul");
        }
    }

    /**
     * Staged MoDE with no-op experts (calibrated expert thresholds, MoD's routing by the named rule): prefill then decode
     * steps on the device give the reference's causal logits over the whole text, on the rows layout and the tiled one.
     */
    @ParameterizedTest(name = "{0} rule, {1} layout")
    @CsvSource({"router, rows", "predictor, tiled"})
    void withExpertsPrefillThenDecodeGivesTheReferenceLogits(String rule, String layout) {
        ModelConfig c = TestModels.config(4, 2, 0.5, List.of(1, 3), RouterWeighting.SIGMOID).withExperts(new Experts(3, 2, 0.3, 20));
        Model m = ModelInit.random(c, 21, rule.equals("predictor") ? 8 : 0);
        m = m.withCalibration(CausalPlan.calibrate(m, new ReferenceKernels(), TestModels.tokens(3, 30, VOCAB, 22)));
        int t = 30;
        int prompt = 12;
        int[] text = TestModels.tokens(1, t, VOCAB, 23)[0];
        CausalPlan whole = new CausalPlan(m, new ReferenceKernels(), routing(rule), 1, t);
        whole.prefill(0, text);
        System.setProperty("mod.tornado.matmul", layout);
        try (TornadoCausalPlan stepped = new TornadoCausalPlan(m, routing(rule), 1, prompt, t, false, null)) {
            stepped.prefill(0, Arrays.copyOf(text, prompt));
            float[] got = Arrays.copyOf(stepped.logits(), t * VOCAB);
            for (int i = prompt; i < t; i++) {
                stepped.run(new int[] {0}, new int[] {text[i]}, 1);
                System.arraycopy(stepped.logits(), 0, got, i * VOCAB, VOCAB);
            }
            assertClose(whole.logits(), got, t);
            for (int e = 0; e < 3; e++) {
                double taken = whole.expertFraction(0, e);
                assertTrue(taken > 0 && taken < 1, "expert " + e + " should take some rows and not others, took " + taken);
            }
        } finally {
            System.clearProperty("mod.tornado.matmul");
        }
    }

    @Test
    void aDecodeStepMovesItsTokensInAndOnlyTheLogitsAskedForOutAndNothingIsRecompiled() {
        Model m = model("router", RouterWeighting.SIGMOID, 2, 3);
        int sequences = 2;
        int[][] text = TestModels.tokens(sequences, 30, VOCAB, 5);
        try (TornadoCausalPlan plan = new TornadoCausalPlan(m, routing("router"), sequences, 10, 30, true, null)) {
            for (int s = 0; s < sequences; s++) {
                plan.prefill(s, Arrays.copyOf(text[s], 10));
            }
            plan.run(new int[] {0, 1}, new int[] {text[0][10], text[1][10]}, 2);
            for (int i = 11; i < 30; i++) {
                plan.run(new int[] {0, 1}, new int[] {text[0][i], text[1][i]}, 2);
                List<GraphProfile> profile = plan.lastProfile();
                assertEquals(List.of("step", "layer0", "layer1", "layer2", "layer3", "head"), profile.stream().map(GraphProfile::graph).toList());
                // TornadoVM counts each launch's argument block as bytes in (24 to 40 bytes here); data that moved
                // would be more: a step's input is 1 + 4 S ints, the smallest activation rows * dim floats.
                long stepInput = (1 + 4L * sequences) * Integer.BYTES;
                for (GraphProfile graph : profile) {
                    long data = graph.bytesIn() - graph.tasks() * 40L - (graph.graph().equals("step") ? stepInput : 0);
                    assertTrue(data <= 0, graph + ": only the step's tokens (and launch arguments) move in");
                    assertEquals(0, graph.bytesOut(), graph + ": nothing moves out until it is asked for");
                    assertEquals(0, graph.compileNanos(), graph.graph() + " recompiled as the context grew");
                    assertTrue(graph.kernelNanos() > 0, graph.graph() + " ran no kernel on the device");
                }
                long before = plan.hostDeviceBytes();
                plan.logits();
                plan.logits();
                assertEquals(before + 2L * VOCAB * Float.BYTES, plan.hostDeviceBytes(), "the step's logits move out once, when asked for");
            }
        }
    }

    @Test
    void twoSequencesDecodingTogetherMatchTheReferencePlanAndRollBack() {
        Model m = model("predictor", RouterWeighting.RAW, 2, 9);
        int[][] text = {TestModels.tokens(1, 24, VOCAB, 1)[0], TestModels.tokens(1, 24, VOCAB, 2)[0]};
        CausalPlan reference = new CausalPlan(m, new ReferenceKernels(), routing("predictor"), 2, 20, 24);
        try (TornadoCausalPlan device = new TornadoCausalPlan(m, routing("predictor"), 2, 20, 24, false, null)) {
            int[] seq = new int[20];
            int[] tok = new int[20];
            for (int i = 0; i < 20; i++) {
                seq[i] = i < 7 ? 0 : 1;
                tok[i] = i < 7 ? text[0][i] : text[1][i - 7];
            }
            for (var plan : List.of(reference, device)) {
                plan.run(seq, tok, 20);
            }
            assertClose(reference.logits(), device.logits(), 20);
            for (int i = 7; i < 11; i++) {
                for (var plan : List.of(reference, device)) {
                    plan.run(new int[] {0, 1}, new int[] {text[0][i], text[1][i + 6]}, 2);
                }
                assertClose(reference.logits(), device.logits(), 2);
            }
            float[] last = Arrays.copyOf(device.logits(), 2 * VOCAB);
            long bytes = device.cacheBytes();
            for (var plan : List.of(reference, device)) {
                plan.truncate(0, 9);
                plan.truncate(1, 15);
            }
            assertEquals(reference.cacheBytes(), device.cacheBytes(), "the caches after a rollback, before the next run");
            assertTrue(device.cacheBytes() < bytes);
            for (var plan : List.of(reference, device)) {
                plan.run(new int[] {0, 0, 1, 1}, new int[] {text[0][9], text[0][10], text[1][15], text[1][16]}, 4);
            }
            assertClose(reference.logits(), device.logits(), 4);
            float[] again = {device.logits()[VOCAB], device.logits()[3 * VOCAB]};
            assertEquals(last[0], again[0], 1e-5, "sequence 0 after the rollback gives what it gave before");
            assertEquals(last[VOCAB], again[1], 1e-5, "sequence 1 after the rollback gives what it gave before");
            for (int layer : List.of(1, 3)) {
                for (int s = 0; s < 2; s++) {
                    int[] want = new int[reference.cache().length(layer, s)];
                    for (int j = 0; j < want.length; j++) {
                        want[j] = reference.cache().position(layer, s, j);
                    }
                    assertArrayEquals(want, device.cachedPositions(layer, s), "layer " + layer + ", sequence " + s);
                }
            }
            assertEquals(reference.cacheBytes(), device.cacheBytes());
            assertEquals(11, device.length(0));
        }
    }

    private static void assertClose(float[] want, float[] got, int rows) {
        double worst = 0;
        double largest = 0;
        for (int i = 0; i < rows * VOCAB; i++) {
            worst = Math.max(worst, Math.abs(want[i] - got[i]));
            largest = Math.max(largest, Math.abs(want[i]));
        }
        assertTrue(worst <= 1e-4 * largest, "largest logit difference " + worst + " of " + largest);
    }
}
