package dev.mod.plan;

import dev.mod.model.Tensor;

/** Router logits r_t = w . x_t on the raw residual stream (no norm, no bias). */
record RouterStage(int layer, Activations a, Tensor router, float[] logits, int rows, int dim) implements Stage {
    @Override
    public String name() {
        return "layer" + layer + ".router";
    }

    @Override
    public String shapes() {
        return "x[" + rows + ", " + dim + "] -> r[" + rows + "]";
    }

    @Override
    public void run(Kernels k) {
        k.routerLogits(logits, a.x(), router, rows, dim);
    }
}
