package dev.mod.plan;

import dev.mod.model.AttentionWeights;
import dev.mod.model.ModelConfig;
import dev.mod.model.Tensor;

/**
 * The attention half of a block over n rows per sequence: a = wo(attention(RoPE(q), RoPE(k), v)) with
 * q, k, v from RMSNorm(in); then h = in + a. Positions are the rows' original positions.
 */
record AttentionStage(int layer, ModelConfig c, AttentionWeights<Tensor> w, Activations a, float[] in, int[] positions,
                      int batch, int n) implements Stage {
    @Override
    public String name() {
        return "layer" + layer + ".attention";
    }

    @Override
    public String shapes() {
        return "in[" + batch + ", " + n + ", " + c.dim() + "] -> a, h[" + batch + ", " + n + ", " + c.dim() + "]";
    }

    @Override
    public void run(Kernels k) {
        int rows = batch * n;
        project(k, c, w, a, in, positions, rows);
        k.attention(a.attention(), a.q(), a.k(), a.v(), positions, batch, n, c.nHeads(), c.nKvHeads(), c.headDim());
        output(k, c, w, a, in, rows);
    }

    // q[rows, H * dh], k and v [rows, Hkv * dh] = RoPE(wq, wk, wv . RMSNorm(in[rows, d])), v without RoPE
    static void project(Kernels k, ModelConfig c, AttentionWeights<Tensor> w, Activations a, float[] in, int[] positions, int rows) {
        int d = c.dim();
        int dh = c.headDim();
        k.rmsnorm(a.normed(), in, w.norm(), rows, d, c.normEps());
        k.matmuls(new float[][] {a.q(), a.k(), a.v()}, a.normed(), new Tensor[] {w.wq(), w.wk(), w.wv()}, rows, d,
                new int[] {c.nHeads() * dh, c.kvDim(), c.kvDim()});
        k.rope(a.q(), positions, rows, c.nHeads(), dh, c.ropeTheta());
        k.rope(a.k(), positions, rows, c.nKvHeads(), dh, c.ropeTheta());
    }

    // attnOut[rows, d] = wo . attention[rows, H * dh]; h = in + attnOut
    static void output(Kernels k, ModelConfig c, AttentionWeights<Tensor> w, Activations a, float[] in, int rows) {
        int d = c.dim();
        k.matmul(a.attnOut(), a.attention(), w.wo(), rows, c.nHeads() * c.headDim(), d);
        k.add(a.h(), in, a.attnOut(), rows * d);
    }
}
