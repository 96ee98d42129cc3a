package dev.mod.plan;

/** A dense block's update: x = x + f(x) for every token. */
record ResidualStage(int layer, Activations a, int rows, int dim) implements Stage {
    @Override
    public String name() {
        return "layer" + layer + ".residual";
    }

    @Override
    public String shapes() {
        return "x += f[" + rows + ", " + dim + "]";
    }

    @Override
    public void run(Kernels k) {
        k.add(a.x(), a.x(), a.delta(), rows * dim);
    }
}
