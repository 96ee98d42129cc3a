package dev.mod.plan;

import dev.mod.model.FeedForward;
import dev.mod.model.ModelConfig;
import dev.mod.model.SwiGlu;
import dev.mod.model.Tensor;

/**
 * The feed-forward half of a block over n rows per sequence: f = a + feedForward(RMSNorm(h)). Each kind of
 * feed-forward (FeedForward) is one method here, chosen in apply.
 */
record FeedForwardStage(int layer, ModelConfig c, FeedForward<Tensor> w, Activations a, int batch, int n) implements Stage {
    @Override
    public String name() {
        return "layer" + layer + ".mlp";
    }

    @Override
    public String shapes() {
        return "h[" + batch + ", " + n + ", " + c.dim() + "] -> f[" + batch + ", " + n + ", " + c.dim() + "]";
    }

    @Override
    public void run(Kernels k) {
        apply(k, c, w, a, batch * n);
    }

    // delta[rows, d] = attnOut + feedForward(RMSNorm(h[rows, d]))
    static void apply(Kernels k, ModelConfig c, FeedForward<Tensor> w, Activations a, int rows) {
        k.rmsnorm(a.normed(), a.h(), w.norm(), rows, c.dim(), c.normEps());
        switch (w) {
            case SwiGlu<Tensor> mlp -> swiGlu(k, c, mlp, a, rows);
        }
        k.add(a.delta(), a.attnOut(), a.mlpOut(), rows * c.dim());
    }

    // mlpOut[rows, d] = w2 . (silu(w1 . normed) * (w3 . normed)), normed[rows, d]
    private static void swiGlu(Kernels k, ModelConfig c, SwiGlu<Tensor> w, Activations a, int rows) {
        int d = c.dim();
        int f = c.hiddenDim();
        k.matmuls(new float[][] {a.gate(), a.up()}, a.normed(), new Tensor[] {w.w1(), w.w3()}, rows, d, new int[] {f, f});
        k.swiglu(a.gate(), a.gate(), a.up(), rows * f);
        k.matmul(a.mlpOut(), a.gate(), w.w2(), rows, f, d);
    }
}
