package dev.mod.model;

import dev.mod.ModException;

/**
 * A mixture-of-experts feed-forward in every block (MoE, and with MoD's routing MoDE): count SwiGLU experts of hidden
 * size hiddenDim, each taking by expert choice its own top floor(capacity x n) of the n rows a block's feed-forward
 * sees in a sequence, and noOps experts that compute nothing. One router [count + noOps, d] scores every row; a row's
 * scores are a softmax over all the experts, and each real expert's output is weighted by the row's probability for it.
 * A no-op expert takes its share of that probability from the real ones, so a row it claims weighs less in their
 * top-k and in their outputs: skipping the feed-forward is one of the router's choices (integrated MoDE).
 */
public record Experts(int count, int noOps, double capacity, int hiddenDim) {
    public Experts {
        if (count < 1) {
            throw new ModException("config: experts.count must be a positive integer, got " + count);
        }
        if (noOps < 0) {
            throw new ModException("config: experts.no_ops must be 0 or more, got " + noOps);
        }
        if (!(capacity > 0 && capacity <= 1)) {
            throw new ModException("config: experts.capacity must be in (0, 1], got " + capacity);
        }
        if (hiddenDim < 1) {
            throw new ModException("config: experts.hidden_dim must be a positive integer, got " + hiddenDim);
        }
        if ((long) count + noOps > MAX_EXPERTS) {
            throw new ModException("config: experts.count + experts.no_ops is above " + MAX_EXPERTS);
        }
    }

    /** The most experts (real and no-op) a block may have. */
    public static final int MAX_EXPERTS = 1024;

    /** The router's rows: one score per expert, real ones first. */
    public int routed() {
        return count + noOps;
    }

    /** Rows each real expert takes of a sequence's n: k_e = max(1, floor(capacity x n)). */
    public int rowsPerExpert(int n) {
        return ModelConfig.capacityTokens(capacity, n);
    }
}
