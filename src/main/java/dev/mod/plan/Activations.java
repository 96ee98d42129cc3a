package dev.mod.plan;

import dev.mod.model.ModelConfig;

/**
 * Every buffer of a forward pass for (config, B, T), allocated once. Rows are sized for T tokens per
 * sequence; a routed layer uses the first B * k of them.
 */
public record Activations(
        float[] x,          // [B, T, d] the residual stream
        float[] selectedX,  // [B, k, d] rows gathered for a routed layer
        float[] normed,     // [B, n, d] RMSNorm output
        float[] q,          // [B, n, H * dh]
        float[] k,          // [B, n, Hkv * dh]
        float[] v,          // [B, n, Hkv * dh]
        float[] attention,  // [B, n, H * dh] attention output before wo
        float[] attnOut,    // [B, n, d] a = wo(attention)
        float[] h,          // [B, n, d] h = x + a
        float[] gate,       // [B, n, F] w1(h_n), then silu(w1(h_n)) * w3(h_n) (empty with experts)
        float[] up,         // [B, n, F] w3(h_n) (empty with experts)
        float[][] expertX,    // [E][B, k_e, d] the rows each expert takes (none without experts)
        float[][] expertGate, // [E][B, k_e, Fe] w1 of them, then silu(w1) * w3
        float[][] expertUp,   // [E][B, k_e, Fe] w3 of them
        float[][] expertOut,  // [E][B, k_e, d] each expert's output
        float[] mlpOut,     // [B, n, d] m
        float[] delta,      // [B, n, d] f = a + m
        int[] positions,    // [B, T] 0..T-1 in every row: positions of a dense layer
        float[] logits) {   // [B, T, V]

    public static Activations allocate(ModelConfig c, int batch, int seqLen) {
        int rows = batch * seqLen;
        int qDim = c.nHeads() * c.headDim();
        int[] positions = new int[rows];
        // an expert takes at most every row of a sequence, so the rows of a whole batch bound its buffers
        int hidden = c.hasExperts() ? 0 : c.hiddenDim();
        int experts = c.hasExperts() ? c.experts().count() : 0;
        int expertHidden = c.hasExperts() ? c.experts().hiddenDim() : 0;
        for (int r = 0; r < rows; r++) {
            positions[r] = r % seqLen;
        }
        return new Activations(
                new float[rows * c.dim()],
                new float[rows * c.dim()],
                new float[rows * c.dim()],
                new float[rows * qDim],
                new float[rows * c.kvDim()],
                new float[rows * c.kvDim()],
                new float[rows * qDim],
                new float[rows * c.dim()],
                new float[rows * c.dim()],
                new float[rows * hidden],
                new float[rows * hidden],
                new float[experts][rows * c.dim()],
                new float[experts][rows * expertHidden],
                new float[experts][rows * expertHidden],
                new float[experts][rows * c.dim()],
                new float[rows * c.dim()],
                new float[rows * c.dim()],
                positions,
                new float[Math.multiplyExact(rows, c.vocabSize())]);
    }
}
