package dev.mod.train;

import java.util.Arrays;

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
        float[] w2 = l.w.routing().predictorW2();
        for (int t = 0; t < rows; t++) {
            double sum = 0;
            for (int j = 0; j < hidden; j++) {
                float z = l.predictorHidden[t * hidden + j];
                sum += w2[j] * (z / (1 + Math.exp(-z)));
            }
            l.predictorLogit[t] = (float) sum;
        }
    }

    // the gradients of w1 (written) and w2 (added) from the BCE against the layer's top-k targets, weighted
    void backward(TrainingLayer l, float weight) {
        float[] w2 = l.w.routing().predictorW2();
        float[] g2 = l.grad.routing().predictorW2();
        Arrays.fill(dLogit, 0, rows, 0f);
        kernels.binaryCrossEntropy(dLogit, l.predictorLogit, l.target, rows, weight);
        for (int t = 0; t < rows; t++) {
            for (int j = 0; j < hidden; j++) {
                float z = l.predictorHidden[t * hidden + j];
                float sig = 1 / (1 + (float) Math.exp(-z));
                g2[j] += dLogit[t] * z * sig;
                dHidden[t * hidden + j] = dLogit[t] * w2[j] * sig * (1 + z * (1 - sig));
            }
        }
        kernels.matmulBackwardWeight(l.grad.routing().predictorW1(), dHidden, l.xin, rows, hidden, dim);
    }
}
