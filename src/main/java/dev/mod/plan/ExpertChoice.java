package dev.mod.plan;

import dev.mod.model.Experts;

/**
 * One block's expert-choice routing for B sequences of n rows (Experts): its router's logits [B * n, E + N], each real
 * expert's probabilities [B * n] and the rows it took, selected[e][B, k_e] (positions within the n, ascending), and
 * how many it took of each sequence, taken[e] (k_e in a forward pass; a causal pass's rule decides), written by each
 * pass and read by tests and analyses after it.
 */
public record ExpertChoice(Experts experts, int batch, int n, float[] logits, float[][] probabilities, int[][] selected, int[] taken) {
    /** For a forward pass: each expert takes k_e rows of each sequence. */
    public static ExpertChoice allocate(Experts experts, int batch, int n) {
        return allocate(experts, batch, n, batch * experts.rowsPerExpert(n));
    }

    /** For a causal pass over chunks of up to maxRows rows: an expert may take any number of them. */
    static ExpertChoice causal(Experts experts, int maxRows) {
        return allocate(experts, 1, maxRows, maxRows);
    }

    private static ExpertChoice allocate(Experts experts, int batch, int n, int selectedRows) {
        int rows = batch * n;
        float[][] probabilities = new float[experts.count()][rows];
        int[][] selected = new int[experts.count()][selectedRows];
        return new ExpertChoice(experts, batch, n, new float[rows * experts.routed()], probabilities, selected, new int[experts.count()]);
    }

    /** Rows each real expert takes of a sequence: k_e. */
    public int rowsPerExpert() {
        return experts.rowsPerExpert(n);
    }
}
