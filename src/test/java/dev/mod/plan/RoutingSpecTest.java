package dev.mod.plan;

import dev.mod.TestModels;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.RouterWeighting;
import dev.mod.model.Tensor;
import dev.mod.reference.ReferenceKernels;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The routed block, point by point, on the reference backend. Several tests rule out mistakes found in
 * public MoD code: residual scaled by r, renumbered positions, indices mixed across the batch, k-1 tokens.
 */
class RoutingSpecTest {
    private static final int D = 16;
    private final ReferenceKernels kernels = new ReferenceKernels();

    private static ModelConfig oneRoutedLayer(double capacity, RouterWeighting g) {
        return TestModels.config(1, 4, capacity, List.of(0), g);
    }

    private static float[] embeddingRows(Model model, int[][] tokens) {
        int seqLen = tokens[0].length;
        float[] x = new float[tokens.length * seqLen * D];
        for (int b = 0; b < tokens.length; b++) {
            for (int t = 0; t < seqLen; t++) {
                for (int i = 0; i < D; i++) {
                    x[(b * seqLen + t) * D + i] = model.embeddings().get((long) tokens[b][t] * D + i);
                }
            }
        }
        return x;
    }

    @Test
    void exactlyKTokensAreSelectedAscendingAndTheOthersPassThroughUnchanged() {
        Model model = TestModels.model(oneRoutedLayer(0.25, RouterWeighting.RAW), 11);
        int[][] tokens = TestModels.tokens(1, 20, 50, 5);
        ForwardPlan plan = TestModels.run(model, tokens);
        int[] sel = plan.selected(0);
        assertEquals(5, plan.capacity());
        assertEquals(5, sel.length);
        for (int j = 1; j < sel.length; j++) {
            assertTrue(sel[j - 1] < sel[j], "ascending, distinct: " + Arrays.toString(sel));
        }
        // the selected are the largest router logits
        float[] r = plan.routerLogits(0);
        float smallestSelected = Float.MAX_VALUE;
        for (int s : sel) {
            smallestSelected = Math.min(smallestSelected, r[s]);
        }
        for (int t = 0; t < 20; t++) {
            if (Arrays.binarySearch(sel, t) < 0) {
                assertTrue(r[t] <= smallestSelected);
            }
        }
        float[] x = embeddingRows(model, tokens);
        float[] hidden = plan.hidden();
        for (int t = 0; t < 20; t++) {
            float[] in = Arrays.copyOfRange(x, t * D, (t + 1) * D);
            float[] out = Arrays.copyOfRange(hidden, t * D, (t + 1) * D);
            if (Arrays.binarySearch(sel, t) >= 0) {
                assertNotEquals(Arrays.toString(in), Arrays.toString(out), "selected token " + t + " is processed");
            } else {
                assertArrayEquals(in, out, "unselected token " + t + " passes through bit for bit");
            }
        }
    }

    /** With capacity 1 every token is routed, so routed - x = g(r) * (dense - x): the residual is not scaled. */
    private void routedDeltaIsTheDenseDeltaTimes(RouterWeighting g) {
        Model model = TestModels.model(oneRoutedLayer(1.0, g), 12);
        int[][] tokens = TestModels.tokens(2, 9, 50, 6);
        ForwardPlan routed = TestModels.run(model, tokens);
        ForwardPlan dense = TestModels.run(model.asDense(), tokens);
        float[] x = embeddingRows(model, tokens);
        float[] r = routed.routerLogits(0);
        double farthestFromOne = 0;
        for (int row = 0; row < 18; row++) {
            double weight = g.apply(r[row]);
            farthestFromOne = Math.max(farthestFromOne, Math.abs(weight - 1));
            for (int i = 0; i < D; i++) {
                int at = row * D + i;
                double expected = weight * (dense.hidden()[at] - x[at]);
                assertEquals(expected, routed.hidden()[at] - x[at], 1e-5 * (1 + Math.abs(expected)),
                        "row " + row + ", element " + i);
            }
        }
        assertTrue(farthestFromOne > 0.1, "some factor must be far from 1 for the test to tell: " + farthestFromOne);
    }

    @Test
    void rawWeightingMultipliesTheBlockOutputByTheRouterLogit() {
        routedDeltaIsTheDenseDeltaTimes(RouterWeighting.RAW);
    }

    @Test
    void sigmoidWeightingMultipliesTheBlockOutputBySigmoidOfTheLogit() {
        routedDeltaIsTheDenseDeltaTimes(RouterWeighting.SIGMOID);
    }

    /** f of a set of rows at given positions, through the kernels directly, independent of the plan's wiring. */
    private float[] blockOutput(Model model, float[] rows, int[] positions) {
        ModelConfig c = model.config();
        int n = positions.length;
        Activations a = Activations.allocate(c, 1, n);
        new AttentionStage(0, c, model.layer(0).attention(), a, rows, positions, 1, n).run(kernels);
        new FeedForwardStage(0, c, model.layer(0).feedForward(), a, null, null, 1, n).run(kernels);
        return Arrays.copyOf(a.delta(), n * D);
    }

    @Test
    void selectedTokensKeepTheirOriginalPositionsAndAttendOnlyAmongThemselves() {
        Model model = TestModels.model(oneRoutedLayer(0.25, RouterWeighting.RAW), 13);
        int[][] tokens = TestModels.tokens(1, 24, 50, 8);
        ForwardPlan plan = TestModels.run(model, tokens);
        int[] sel = plan.selected(0);
        assertTrue(sel[sel.length - 1] - sel[0] >= sel.length, "the test needs gaps between the selected positions");
        float[] x = embeddingRows(model, tokens);
        float[] gathered = new float[sel.length * D];
        for (int j = 0; j < sel.length; j++) {
            System.arraycopy(x, sel[j] * D, gathered, j * D, D);
        }
        float[] original = blockOutput(model, gathered, sel);
        int[] renumbered = new int[sel.length];
        Arrays.setAll(renumbered, j -> j);
        float[] wrong = blockOutput(model, gathered, renumbered);

        float[] r = plan.routerLogits(0);
        double worstOriginal = 0;
        double worstRenumbered = 0;
        for (int j = 0; j < sel.length; j++) {
            for (int i = 0; i < D; i++) {
                double delta = plan.hidden()[sel[j] * D + i] - x[sel[j] * D + i];
                worstOriginal = Math.max(worstOriginal, Math.abs(delta - r[sel[j]] * original[j * D + i]));
                worstRenumbered = Math.max(worstRenumbered, Math.abs(delta - r[sel[j]] * wrong[j * D + i]));
            }
        }
        assertTrue(worstOriginal < 1e-5, "matches f at original positions: " + worstOriginal);
        assertTrue(worstRenumbered > 1e-3, "renumbered positions would give another answer: " + worstRenumbered);
    }

    @Test
    void batchRowsRouteIndependently() {
        Model model = TestModels.model(TestModels.config(2, 2, 0.25, List.of(0, 1), RouterWeighting.RAW), 14);
        int[][] tokens = TestModels.tokens(3, 16, 50, 9);
        ForwardPlan together = TestModels.run(model, tokens);
        int k = together.capacity();
        int v = model.config().vocabSize();
        for (int b = 0; b < 3; b++) {
            ForwardPlan alone = TestModels.run(model, new int[][] {tokens[b]});
            for (int layer : List.of(0, 1)) {
                assertArrayEquals(alone.selected(layer), Arrays.copyOfRange(together.selected(layer), b * k, (b + 1) * k),
                        "row " + b + ", layer " + layer);
            }
            assertArrayEquals(alone.logits(), Arrays.copyOfRange(together.logits(), b * 16 * v, (b + 1) * 16 * v),
                    "row " + b + " logits");
        }
        assertNotEquals(Arrays.toString(Arrays.copyOfRange(together.selected(0), 0, k)),
                Arrays.toString(Arrays.copyOfRange(together.selected(0), k, 2 * k)), "rows should choose differently");
    }

    @Test
    void groupedQueryAttentionEqualsRepeatingEachKvHeadForItsQueryHeads() {
        ModelConfig gqa = TestModels.config(2, 2, 0.5, List.of(1), RouterWeighting.RAW);
        Model model = TestModels.model(gqa, 15);
        ModelConfig full = new ModelConfig(gqa.vocabSize(), gqa.dim(), gqa.nLayers(), gqa.nHeads(), gqa.nHeads(),
                gqa.hiddenDim(), gqa.normEps(), gqa.ropeTheta(), gqa.maxSeqLen(), gqa.capacity(), gqa.routedLayers(),
                gqa.routerWeighting());
        Map<String, Tensor> tensors = new LinkedHashMap<>(model.tensors());
        int dh = gqa.headDim();
        int group = gqa.nHeads() / gqa.nKvHeads();
        for (int layer = 0; layer < 2; layer++) {
            for (String kv : List.of("wk", "wv")) {
                String name = "layers." + layer + ".attention." + kv + ".weight";
                float[] w = model.tensor(name).toFloatArray();
                float[] expanded = new float[gqa.nHeads() * dh * D];
                for (int h = 0; h < gqa.nHeads(); h++) {
                    System.arraycopy(w, (h / group) * dh * D, expanded, h * dh * D, dh * D);
                }
                tensors.put(name, Tensor.of(name, expanded, gqa.nHeads() * dh, D));
            }
        }
        Model expandedModel = new Model(full, tensors, null);
        int[][] tokens = TestModels.tokens(2, 12, 50, 10);
        ForwardPlan a = TestModels.run(model, tokens);
        ForwardPlan b = TestModels.run(expandedModel, tokens);
        assertArrayEquals(a.selected(1), b.selected(1));
        assertArrayEquals(a.logits(), b.logits(), 1e-5f);
    }

    @Test
    void aDenseModelIsCausal() {
        Model model = TestModels.model(TestModels.config(2, 2, 1.0, List.of(), RouterWeighting.RAW), 16);
        int[][] tokens = TestModels.tokens(1, 12, 50, 11);
        float[] before = TestModels.run(model, tokens).logits().clone();
        tokens[0][8] = (tokens[0][8] + 1) % 50;
        float[] after = TestModels.run(model, tokens).logits();
        int v = 50;
        assertArrayEquals(Arrays.copyOf(before, 8 * v), Arrays.copyOf(after, 8 * v), "positions before 8 unchanged");
        assertNotEquals(Arrays.toString(Arrays.copyOfRange(before, 8 * v, 9 * v)),
                Arrays.toString(Arrays.copyOfRange(after, 8 * v, 9 * v)), "position 8 changes");
    }

    @Test
    void thePlanIsReusedAcrossBatchesOfTheSameShape() {
        Model model = TestModels.model(TestModels.config(2, 2, 0.25, List.of(1), RouterWeighting.SIGMOID), 17);
        int[][] first = TestModels.tokens(2, 16, 50, 1);
        int[][] second = TestModels.tokens(2, 16, 50, 2);
        ForwardPlan plan = TestModels.run(model, first);
        float[] firstLogits = plan.logits().clone();
        plan.run(second);
        assertArrayEquals(TestModels.run(model, second).logits(), plan.logits());
        plan.run(first);
        assertArrayEquals(firstLogits, plan.logits());
    }
}
