package dev.mod.train;

/**
 * The causal predictor of a routed layer in training, a forward and its backward twin: a small MLP on the layer's input
 * that learns the top-k choice (BCE against it). Its input is a stop-gradient, so its gradients reach its own weights only.
 */
final class PredictorTraining {
    private final TrainingKernels kernels;
    private final int rows;
    private final int dim;
    private final int hidden;
    private final float[] dHidden;  // [R, P]
    private final float[] dLogit;   // [R]

    PredictorTraining(TrainingKernels kernels, int rows, int dim, int hidden) {
        this.kernels = kernels;
        this.rows = rows;
        this.dim = dim;
        this.hidden = hidden;
        dHidden = new float[Math.max(1, rows * hidden)];
        dLogit = new float[rows];
    }

    // predictorLogit[R] = w2 . silu(w1 . xin[R, d])
    void forward(TrainingLayer l) {
        kernels.matmul(l.predictorHidden, l.xin, l.packed.routing().predictorW1(), rows);
        kernels.predictorLogits(l.predictorLogit, l.predictorHidden, l.w.routing().predictorW2(), rows, hidden);
    }

    // the gradients of w1 (written) and w2 (added) from the BCE against the layer's top-k targets, weighted
    void backward(TrainingLayer l, float weight) {
        kernels.zero(dLogit, rows);
        kernels.binaryCrossEntropyBackward(dLogit, l.predictorLogit, l.target, rows, weight);
        kernels.predictorLogitsBackward(dHidden, l.grad.routing().predictorW2(), dLogit, l.predictorHidden,
                l.w.routing().predictorW2(), rows, hidden);
        kernels.matmulBackwardWeight(l.grad.routing().predictorW1(), dHidden, l.xin, rows, hidden, dim);
    }
}
