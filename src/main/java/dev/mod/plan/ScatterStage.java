package dev.mod.plan;

import dev.mod.model.RouterWeighting;

/** A routed block's update: x_t += g(r_t) * f_t for the selected t; every other row is left as it is. */
record ScatterStage(int layer, Activations a, int[] selected, float[] logits, RouterWeighting weighting,
                    int batch, int seqLen, int capacity, int dim) implements Stage {
    @Override
    public String name() {
        return "layer" + layer + ".scatter";
    }

    @Override
    public String shapes() {
        return "x[selected] += g(r) * f[" + batch + ", " + capacity + ", " + dim + "]";
    }

    @Override
    public void run(Kernels k) {
        k.scatter(a.x(), a.delta(), selected, logits, weighting, batch, seqLen, capacity, dim);
    }
}
