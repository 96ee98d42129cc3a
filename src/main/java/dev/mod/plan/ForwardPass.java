package dev.mod.plan;

import dev.mod.ModException;
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

    /** The static shape the pass was built for: (config, B, T), k and each layer's rows. */
    PlanShape shape();

    default ModelConfig config() {
        return shape().config();
    }

    default int batch() {
        return shape().batch();
    }

    default int seqLen() {
        return shape().seqLen();
    }

    /** k: tokens per sequence processed by each routed layer. */
    default int capacity() {
        return shape().capacity();
    }

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

    /** The expert choices of a layer's mixture of experts in the last run (a model with Experts). */
    default ExpertChoice expertChoice(int layer) {
        throw new ModException("this backend does not run mixtures of experts");
    }

    /**
     * Checks a batch against a pass for B sequences of T tokens over a vocabulary of V ids: B rows, each of
     * T ids in [0, V). The error names the first row or token that is wrong.
     */
    static void checkBatch(int[][] tokens, int batch, int seqLen, int vocabSize) {
        if (tokens.length != batch) {
            throw new ModException("plan is for " + batch + " sequences, got " + tokens.length);
        }
        for (int b = 0; b < batch; b++) {
            if (tokens[b].length != seqLen) {
                throw new ModException("plan is for sequences of " + seqLen + " tokens, row " + b + " has " + tokens[b].length);
            }
            for (int t = 0; t < seqLen; t++) {
                int id = tokens[b][t];
                if (id < 0 || id >= vocabSize) {
                    throw new ModException("token id " + id + " at row " + b + ", position " + t
                            + " is outside the vocabulary [0, " + vocabSize + ")");
                }
            }
        }
    }

    /** Bytes moved between host and device by the last run, where the backend counts them (else null). */
    default Long hostDeviceBytes() {
        return null;
    }

    /**
     * Whether the next runs must keep selected() and routerLogits() (default yes). A device backend moves them
     * to the host only when kept; timing runs turn them off. Host backends always have them.
     */
    default void keepRoutingOutputs(boolean keep) {
    }

    /**
     * Whether the next runs count the bytes they move (hostDeviceBytes), where the backend counts them. A device
     * backend counts through its profiler, which slows a run down: timing runs turn it off.
     */
    default void countTransfers(boolean count) {
    }

    /** Releases what the pass holds on a device; host-side passes hold nothing. */
    @Override
    default void close() {
    }
}
