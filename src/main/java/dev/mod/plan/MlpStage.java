package dev.mod.plan;

import dev.mod.model.LayerWeights;
import dev.mod.model.ModelConfig;

/** The SwiGLU half of a block: m = w2(silu(w1(h_n)) * w3(h_n)), h_n = RMSNorm(h); then f = a + m. */
record MlpStage(int layer, ModelConfig c, LayerWeights w, Activations a, int batch, int n) implements Stage {
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

    // delta[rows, d] = attnOut + w2 . (silu(w1 . RMSNorm(h)) * (w3 . RMSNorm(h))), h[rows, d]
    static void apply(Kernels k, ModelConfig c, LayerWeights w, Activations a, int rows) {
        int d = c.dim();
        int f = c.hiddenDim();
        k.rmsnorm(a.normed(), a.h(), w.ffnNorm(), rows, d, c.normEps());
        k.matmul(a.gate(), a.normed(), w.w1(), rows, d, f);
        k.matmul(a.up(), a.normed(), w.w3(), rows, d, f);
        k.swiglu(a.gate(), a.gate(), a.up(), rows * f);
        k.matmul(a.mlpOut(), a.gate(), w.w2(), rows, f, d);
        k.add(a.delta(), a.attnOut(), a.mlpOut(), rows * d);
    }
}
