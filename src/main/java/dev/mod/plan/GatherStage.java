package dev.mod.plan;

/** Copies the selected rows of each sequence out of the residual stream. */
record GatherStage(int layer, Activations a, int[] selected, int batch, int seqLen, int capacity, int dim)
        implements Stage {
    @Override
    public String name() {
        return "layer" + layer + ".gather";
    }

    @Override
    public String shapes() {
        return "x[" + batch + ", " + seqLen + ", " + dim + "] -> xs[" + batch + ", " + capacity + ", " + dim + "]";
    }

    @Override
    public void run(Kernels k) {
        k.gather(a.selectedX(), a.x(), selected, batch, seqLen, capacity, dim);
    }
}
