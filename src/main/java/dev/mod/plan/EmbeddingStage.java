package dev.mod.plan;

import dev.mod.model.Tensor;

/** x = embedding rows of the batch's tokens. */
record EmbeddingStage(Activations a, int[] tokens, Tensor embeddings, int rows, int dim) implements Stage {
    @Override
    public String name() {
        return "embedding";
    }

    @Override
    public String shapes() {
        return "tokens[" + rows + "] -> x[" + rows + ", " + dim + "]";
    }

    @Override
    public void run(Kernels k) {
        k.embed(a.x(), tokens, embeddings, rows, dim);
    }
}
