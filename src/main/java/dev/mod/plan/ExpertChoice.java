package dev.mod.plan;

import dev.mod.model.Experts;

/**
 * One block's expert-choice routing for B sequences of n rows (Experts): its router's logits [B * n, E + N], each real
 * expert's probabilities [B * n] and the rows it took, selected[e][B, k_e] (positions within the n, ascending),
 * written by each forward pass and read by tests and analyses after it.
 */
public record ExpertChoice(Experts experts, int batch, int n, float[] logits, float[][] probabilities, int[][] selected) {
    public static ExpertChoice allocate(Experts experts, int batch, int n) {
        int rows = batch * n;
        float[][] probabilities = new float[experts.count()][rows];
        int[][] selected = new int[experts.count()][batch * experts.rowsPerExpert(n)];
        return new ExpertChoice(experts, batch, n, new float[rows * experts.routed()], probabilities, selected);
    }

    /** Rows each real expert takes of a sequence: k_e. */
    public int rowsPerExpert() {
        return experts.rowsPerExpert(n);
    }
}
