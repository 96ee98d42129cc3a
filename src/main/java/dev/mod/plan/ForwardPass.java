package dev.mod.plan;

import dev.mod.model.ModelConfig;

import java.util.List;

/**
 * A forward pass built once for batches of B sequences of T tokens, whatever runs it: the stage-by-stage
 * {@link ForwardPlan} on a backend's kernels, or a backend's own compiled form of the same stages (the
 * TornadoVM task graphs). Outputs are the pass's own buffers, overwritten by the next run.
 */
public interface ForwardPass extends AutoCloseable {
    /** Runs one batch: tokens[b][t], B rows of T tokens. */
    void run(int[][] tokens);

    ModelConfig config();

    int batch();

    int seqLen();

    /** k: tokens per sequence processed by each routed layer. */
    int capacity();

    /** The backend's name, as --backend takes it. */
    String backend();

    /** logits[B, T, V] of the last run. */
    float[] logits();

    /** Routed layer indices, ascending. */
    List<Integer> routedLayers();

    /** selected[B, k] positions of a routed layer in the last run, ascending per sequence. */
    int[] selected(int layer);

    /** r[B, T] router logits of a routed layer in the last run. */
    float[] routerLogits(int layer);

    /** Releases what the pass holds on a device; host-side passes hold nothing. */
    @Override
    default void close() {
    }
}
