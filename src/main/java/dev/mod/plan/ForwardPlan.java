package dev.mod.plan;

import dev.mod.ModException;
import dev.mod.model.BlockStep;
import dev.mod.model.LayerWeights;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.Tensor;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The static forward pass of a model for batches of B sequences of T tokens. Built once: the stages,
 * their shapes and every buffer are fixed by (model, B, T) and the capacity k, and reused by every batch
 * of that shape. A backend supplies the kernels; the plan's structure is the same for all of them.
 */
public final class ForwardPlan implements ForwardPass {
    private final Model model;
    private final Kernels kernels;
    private final PlanShape shape;
    private final int batch;
    private final int seqLen;
    private final int capacity;
    private final Activations activations;
    private final int[] tokens;
    private final Map<Integer, float[]> routerLogits = new TreeMap<>();
    private final Map<Integer, int[]> selected = new TreeMap<>();
    private final Map<Integer, ExpertChoice> expertChoices = new TreeMap<>();
    private final List<Stage> stages;
    /** The stages as an array: the per-batch loop walks it without an iterator. */
    private final Stage[] stageArray;

    public ForwardPlan(Model model, Kernels kernels, int batch, int seqLen) {
        ModelConfig c = model.config();
        this.shape = PlanShape.of(c, batch, seqLen);
        this.model = model;
        this.kernels = kernels;
        this.batch = batch;
        this.seqLen = seqLen;
        this.capacity = shape.capacity();
        this.activations = Activations.allocate(c, batch, seqLen);
        this.tokens = new int[batch * seqLen];
        this.stages = Collections.unmodifiableList(buildStages(c));
        this.stageArray = stages.toArray(new Stage[0]);
    }

    private List<Stage> buildStages(ModelConfig c) {
        int rows = batch * seqLen;
        int d = c.dim();
        Activations a = activations;
        List<Stage> list = new ArrayList<>();
        list.add(new EmbeddingStage(a, tokens, model.embeddings(), rows, d));
        for (PlanShape.Layer shapeOfLayer : shape.layers()) {
            int layer = shapeOfLayer.index();
            int n = shapeOfLayer.rowsPerSequence();
            LayerWeights<Tensor> w = model.layer(layer);
            float[] r = w.routed() ? new float[rows] : null;
            int[] sel = w.routed() ? new int[batch * capacity] : null;
            if (w.routed()) {
                routerLogits.put(layer, r);
                selected.put(layer, sel);
            }
            ExpertChoice choice = c.hasExperts() ? ExpertChoice.allocate(c.experts(), batch, n) : null;
            if (choice != null) {
                expertChoices.put(layer, choice);
            }
            for (BlockStep step : w.steps()) {
                list.add(switch (step) {
                    case ROUTER -> new RouterStage(layer, a, w.routing().router(), r, rows, d);
                    case SELECT -> new TopKStage(layer, r, sel, batch, seqLen, capacity);
                    case GATHER -> new GatherStage(layer, a, sel, batch, seqLen, capacity, d);
                    case ATTENTION -> new AttentionStage(layer, c, w.attention(), a, w.routed() ? a.selectedX() : a.x(),
                            w.routed() ? sel : a.positions(), batch, n);
                    case FEED_FORWARD -> new FeedForwardStage(layer, c, w.feedForward(), a, choice,
                            choice == null ? null : FeedForwardStage.ExpertRule.topK(c.experts()), batch, n);
                    case SCATTER -> new ScatterStage(layer, a, sel, r, c.routerWeighting(), batch, seqLen, capacity, d);
                    case RESIDUAL -> new ResidualStage(layer, a, rows, d);
                });
            }
        }
        list.add(new HeadStage(c, model.finalNorm(), model.output(), a, rows));
        return list;
    }

    /**
     * Runs one batch: tokens[b][t] for B rows of T tokens each. The outputs (logits, selections, router
     * logits, hidden state) are the plan's own buffers, overwritten by the next run.
     */
    @Override
    public void run(int[][] batchTokens) {
        ForwardPass.checkBatch(batchTokens, batch, seqLen, model.config().vocabSize());
        for (int b = 0; b < batch; b++) {
            System.arraycopy(batchTokens[b], 0, tokens, b * seqLen, seqLen);
        }
        for (Stage stage : stageArray) {
            stage.run(kernels);
        }
    }

    @Override
    public PlanShape shape() {
        return shape;
    }

    @Override
    public String backend() {
        return kernels.name();
    }

    public List<Stage> stages() {
        return stages;
    }

    /** The kernels the stages run on. */
    public Kernels kernels() {
        return kernels;
    }

    /** logits[B, T, V] of the last run. */
    @Override
    public float[] logits() {
        return activations.logits();
    }

    /** The residual stream [B, T, d] after the last block (before the final norm) of the last run. */
    public float[] hidden() {
        return activations.x();
    }

    /** Routed layer indices, ascending. */
    @Override
    public List<Integer> routedLayers() {
        return List.copyOf(selected.keySet());
    }

    /** selected[B, k] positions of a routed layer in the last run, ascending per sequence. */
    @Override
    public int[] selected(int layer) {
        return lookup(selected, layer);
    }

    /** r[B, T] router logits of a routed layer in the last run. */
    @Override
    public float[] routerLogits(int layer) {
        return lookup(routerLogits, layer);
    }

    /** The expert choices of a layer's mixture of experts in the last run. */
    @Override
    public ExpertChoice expertChoice(int layer) {
        ExpertChoice choice = expertChoices.get(layer);
        if (choice == null) {
            throw new ModException("layer " + layer + " has no experts");
        }
        return choice;
    }

    private static <T> T lookup(Map<Integer, T> map, int layer) {
        T value = map.get(layer);
        if (value == null) {
            throw new ModException("layer " + layer + " is not routed");
        }
        return value;
    }
}
