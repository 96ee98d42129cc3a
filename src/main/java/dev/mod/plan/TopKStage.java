package dev.mod.plan;

/** Expert-choice top-k over each sequence: k positions, ascending. */
record TopKStage(int layer, float[] logits, int[] selected, int batch, int seqLen, int capacity) implements Stage {
    @Override
    public String name() {
        return "layer" + layer + ".topk";
    }

    @Override
    public String shapes() {
        return "r[" + batch + ", " + seqLen + "] -> selected[" + batch + ", " + capacity + "]";
    }

    @Override
    public void run(Kernels k) {
        k.topK(selected, logits, batch, seqLen, capacity);
    }
}
