package dev.mod.plan;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mod.ModException;
import dev.mod.TestModels;
import dev.mod.cpu.CpuKernels;
import dev.mod.model.Experts;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelCost;
import dev.mod.model.ModelInit;
import dev.mod.model.RouterWeighting;
import dev.mod.model.RoutingCalibration;
import dev.mod.model.Tensor;
import dev.mod.reference.ReferenceKernels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The mixture-of-experts feed-forward (Experts) on the reference and cpu backends: what expert choice must do. */
class MixtureOfExpertsTest {
    private static final CpuKernels CPU = new CpuKernels(2);
    private static final Kernels[] BACKENDS = {new ReferenceKernels(), CPU};

    @AfterAll
    static void closePool() {
        CPU.close();
    }

    /** One expert taking every row, weighted by a softmax over itself (exactly 1), is the SwiGLU MLP, bit for bit. */
    @Test
    void oneExpertAtFullCapacityIsTheDenseFeedForward() {
        ModelConfig dense = TestModels.config(3, 2, 0.5, List.of(1), RouterWeighting.RAW);
        ModelConfig oneExpert = dense.withExperts(new Experts(1, 0, 1.0, dense.hiddenDim()));
        Model mlp = ModelInit.random(dense, 3);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        Model random = ModelInit.random(oneExpert, 4);
        for (String name : oneExpert.tensorShapes().keySet()) {
            String mlpName = name.replace("feed_forward.experts.0.", "feed_forward.");
            tensors.put(name, name.contains("feed_forward.router") ? random.tensor(name) : mlp.tensor(mlpName));
        }
        Model experts = new Model(oneExpert, tensors, null);
        int[][] tokens = TestModels.tokens(2, 19, dense.vocabSize(), 5);
        for (Kernels k : BACKENDS) {
            ForwardPlan a = new ForwardPlan(mlp, k, 2, 19);
            ForwardPlan b = new ForwardPlan(experts, k, 2, 19);
            a.run(tokens);
            b.run(tokens);
            assertArrayEquals(a.logits(), b.logits(), k.name());
            assertArrayEquals(a.selected(1), b.selected(1), k.name());
        }
    }

    /** A row no expert takes gets f = a exactly: the feed-forward adds nothing to it, not even a rounding. */
    @Test
    void aRowNoExpertTakesPassesThroughUnchanged() {
        ModelConfig c = TestModels.config(1, 2, 1.0, List.of(), RouterWeighting.RAW).withExperts(new Experts(2, 1, 0.25, 20));
        Model model = ModelInit.random(c, 7);
        int batch = 2;
        int n = 14;
        for (Kernels k : BACKENDS) {
            Activations a = Activations.allocate(c, batch, n);
            SplittableRandom random = new SplittableRandom(8);
            for (int i = 0; i < batch * n * c.dim(); i++) {
                a.h()[i] = (float) random.nextGaussian();
                a.attnOut()[i] = (float) random.nextGaussian();
            }
            ExpertChoice choice = ExpertChoice.allocate(c.experts(), batch, n);
            new FeedForwardStage(0, c, model.layer(0).feedForward(), a, choice, FeedForwardStage.ExpertRule.topK(c.experts()), batch, n)
                    .run(k);
            boolean[] taken = new boolean[batch * n];
            for (int[] sel : choice.selected()) {
                for (int j = 0; j < sel.length; j++) {
                    taken[j / choice.rowsPerExpert() * n + sel[j]] = true;
                }
            }
            int declined = 0;
            for (int row = 0; row < batch * n; row++) {
                float[] f = Arrays.copyOfRange(a.delta(), row * c.dim(), (row + 1) * c.dim());
                float[] attention = Arrays.copyOfRange(a.attnOut(), row * c.dim(), (row + 1) * c.dim());
                if (taken[row]) {
                    assertFalse(Arrays.equals(f, attention), k.name() + ": row " + row + " was taken");
                } else {
                    declined++;
                    assertArrayEquals(attention, f, k.name() + ": row " + row + " passes through");
                }
            }
            // two experts of 3 rows in each sequence of 14: at least 8 rows declined per sequence
            assertTrue(declined >= 2 * 8, k.name() + ": " + declined);
        }
    }

    /**
     * Each expert takes the top floor(capacity x n) of its probabilities in each sequence (lower position first on a tie),
     * in ascending order, with capacities that do not divide n; the real experts' probabilities are a softmax's share,
     * all of it without no-op experts.
     */
    @Test
    void eachExpertTakesTheTopOfItsProbabilities() {
        for (Experts experts : List.of(new Experts(3, 0, 0.3, 16), new Experts(2, 3, 0.45, 16), new Experts(5, 0, 0.05, 8))) {
            ModelConfig c = TestModels.config(2, 2, 0.5, List.of(1), RouterWeighting.SIGMOID).withExperts(experts);
            Model model = ModelInit.random(c, 9);
            int batch = 3;
            int seqLen = 23;
            ForwardPlan plan = new ForwardPlan(model, CPU, batch, seqLen);
            plan.run(TestModels.tokens(batch, seqLen, c.vocabSize(), 10));
            for (int layer = 0; layer < 2; layer++) {
                ExpertChoice choice = plan.expertChoice(layer);
                int n = c.tokensProcessed(layer, seqLen);
                int k = experts.rowsPerExpert(n);
                assertEquals(Math.max(1, (int) Math.floor(experts.capacity() * n + 1e-9)), k);
                assertEquals(n, choice.n());
                for (int row = 0; row < batch * n; row++) {
                    double sum = 0;
                    for (float[] p : choice.probabilities()) {
                        sum += p[row];
                    }
                    if (experts.noOps() == 0) {
                        assertEquals(1.0, sum, 1e-5);
                    } else {
                        assertTrue(sum < 1, "no-op experts take a share: " + sum);
                    }
                }
                for (int e = 0; e < experts.count(); e++) {
                    float[] p = choice.probabilities()[e];
                    int[] sel = choice.selected()[e];
                    for (int b = 0; b < batch; b++) {
                        boolean[] picked = new boolean[n];
                        for (int j = 0; j < k; j++) {
                            int t = sel[b * k + j];
                            assertTrue(j == 0 || t > sel[b * k + j - 1], "ascending and distinct");
                            picked[t] = true;
                        }
                        for (int t = 0; t < n; t++) {
                            for (int u = 0; u < n; u++) {
                                if (picked[t] && !picked[u]) {
                                    float in = p[b * n + t];
                                    float out = p[b * n + u];
                                    assertTrue(in > out || (in == out && t < u), "layer " + layer + ", expert " + e + ": " + t + " over " + u);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /**
     * Generation's rule: an expert takes a row when its probability is above the expert's calibrated threshold. Experts of
     * capacity 1 are calibrated to take every row, so the causal pass is the forward pass.
     */
    @Test
    void causalExpertsThatTakeEveryRowGiveTheForwardPass() {
        ModelConfig c = TestModels.config(2, 2, 1.0, List.of(), RouterWeighting.RAW).withExperts(new Experts(3, 1, 1.0, 20));
        Model model = ModelInit.random(c, 11);
        int[][] text = TestModels.tokens(1, 30, c.vocabSize(), 12);
        for (Kernels k : BACKENDS) {
            Model calibrated = model.withCalibration(CausalPlan.calibrate(model, k, TestModels.tokens(2, 20, c.vocabSize(), 13)));
            CausalPlan causal = new CausalPlan(calibrated, k, RoutingRule.ROUTER, 1, 30);
            causal.prefill(0, text[0]);
            ForwardPlan forward = new ForwardPlan(model, k, 1, 30);
            forward.run(text);
            for (int i = 0; i < forward.logits().length; i++) {
                assertEquals(forward.logits()[i], causal.logits()[i], 1e-5, k.name() + ": logit " + i);
            }
            for (int e = 0; e < 3; e++) {
                assertEquals(1.0, causal.expertFraction(1, e), k.name());
            }
        }
    }

    /** Each row's experts are decided by that row alone: a prompt in one chunk or token by token gives the same logits. */
    @Test
    void aCausalPassWithExpertsIsTheSameInOneChunkOrTokenByToken() {
        ModelConfig c = TestModels.config(4, 2, 0.5, List.of(1, 3), RouterWeighting.SIGMOID).withExperts(new Experts(3, 2, 0.3, 20));
        Model model = ModelInit.random(c, 14, 8);
        model = model.withCalibration(CausalPlan.calibrate(model, CPU, TestModels.tokens(3, 30, c.vocabSize(), 15)));
        int t = 36;
        int[] text = TestModels.tokens(1, t, c.vocabSize(), 16)[0];
        for (String rule : List.of("router", "predictor", "calibrated")) {
            CausalPlan whole = new CausalPlan(model, CPU, RoutingRule.named(rule), 1, t);
            whole.prefill(0, text);
            CausalPlan stepped = new CausalPlan(model, CPU, RoutingRule.named(rule), 1, t);
            int prompt = 11;
            stepped.prefill(0, Arrays.copyOf(text, prompt));
            float[] got = Arrays.copyOf(stepped.logits(), t * c.vocabSize());
            for (int i = prompt; i < t; i++) {
                stepped.run(new int[] {0}, new int[] {text[i]}, 1);
                System.arraycopy(stepped.logits(), 0, got, i * c.vocabSize(), c.vocabSize());
            }
            double worst = 0;
            for (int i = 0; i < got.length; i++) {
                worst = Math.max(worst, Math.abs(whole.logits()[i] - got[i]));
            }
            assertTrue(worst <= 1e-5, rule + ": largest logit difference " + worst);
            for (int e = 0; e < 3; e++) {
                double taken = whole.expertFraction(0, e);
                assertTrue(taken > 0 && taken < 1, rule + ": expert " + e + " took " + taken);
            }
        }
    }

    /** Calibration sets each expert's threshold so that it takes its capacity of the calibration text's rows. */
    @Test
    void calibrationGivesEachExpertItsCapacity() {
        ModelConfig c = TestModels.config(2, 2, 1.0, List.of(), RouterWeighting.RAW).withExperts(new Experts(3, 2, 0.3, 16));
        Model model = ModelInit.random(c, 17);
        int[][] text = TestModels.tokens(3, 40, c.vocabSize(), 18);
        Model calibrated = model.withCalibration(CausalPlan.calibrate(model, CPU, text));
        assertEquals(2, calibrated.calibration().expertThresholds().size());
        CausalPlan plan = new CausalPlan(calibrated, CPU, RoutingRule.ROUTER, 3, 40);
        for (int s = 0; s < 3; s++) {
            plan.prefill(s, text[s]);
        }
        for (int layer = 0; layer < 2; layer++) {
            for (int e = 0; e < 3; e++) {
                assertEquals(36 / 120.0, plan.expertFraction(layer, e), 1e-12, "layer " + layer + ", expert " + e);
            }
        }
        ModException e = assertThrows(ModException.class, () -> new CausalPlan(model, CPU, RoutingRule.ROUTER, 1, 8));
        assertTrue(e.getMessage().contains("run mod calibrate on it first"), e.getMessage());
        // the thresholds travel in the model file's calibration
        assertEquals(calibrated.calibration(), RoutingCalibration.fromJson(calibrated.calibration().toJson()));
    }

    @Test
    void flopsCountWhatRuns() {
        ModelConfig dense = TestModels.config(2, 2, 1.0, List.of(), RouterWeighting.RAW);
        int f = dense.hiddenDim();
        int d = dense.dim();
        ModelConfig one = dense.withExperts(new Experts(1, 0, 1.0, f));
        assertEquals(ModelCost.feedForwardFlops(dense, 40) + 2.0 * 40 * d, ModelCost.feedForwardFlops(one, 40), "plus the router");
        ModelConfig four = dense.withExperts(new Experts(4, 2, 0.3, 10));
        assertEquals(2.0 * 40 * d * 6 + 4 * 6.0 * 12 * d * 10, ModelCost.feedForwardFlops(four, 40));
        long total = 1000;
        assertEquals(total - 2 * 4 * 0.7 * 3 * d * 10, ModelCost.activeParameters(four, total), 1e-6);
    }

    @Test
    void theConfigSaysWhichExperts() {
        ModelConfig c = TestModels.config(2, 2, 0.5, List.of(1), RouterWeighting.RAW).withExperts(new Experts(4, 1, 0.3, 20));
        assertEquals(c, ModelConfig.fromJson(c.toJson()));
        assertFalse(c.dense().toJson().equals(c.withExperts(null).toJson()));
        assertTrue(c.tensorShapes().containsKey("layers.1.feed_forward.experts.3.w2.weight"));
        assertArrayEquals(new long[] {5, 16}, c.tensorShapes().get("layers.0.feed_forward.router.weight"));
        assertFalse(c.tensorShapes().containsKey("layers.0.feed_forward.w1.weight"));
        String json = c.toJson();
        assertRefused("unknown field \"experts.top_k\"", json.replace("\"no_ops\"", "\"top_k\""));
        ObjectNode tree = c.toJsonTree();
        ((ObjectNode) tree.get("experts")).remove("hidden_dim");
        assertRefused("missing field \"experts.hidden_dim\"", tree.toString());
        assertRefused("experts.count must be a positive integer, got 0", json.replace("\"count\" : 4", "\"count\" : 0"));
        assertRefused("experts.capacity must be in (0, 1], got 1.5", json.replace("\"capacity\" : 0.3", "\"capacity\" : 1.5"));
        assertRefused("experts must be an object", json.replaceAll("\"experts\" : \\{[^}]*}", "\"experts\" : 4"));
    }

    private static void assertRefused(String message, String json) {
        ModException e = assertThrows(ModException.class, () -> ModelConfig.fromJson(json), json);
        assertTrue(e.getMessage().contains(message), e.getMessage());
    }
}
