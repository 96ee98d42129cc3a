package dev.mod.train;

import dev.mod.model.FeedForward;
import dev.mod.model.SwiGlu;

/**
 * Training's feed-forward of one layer over n rows, a forward and its backward twin: forward keeps what backward needs.
 * Each kind of feed-forward (FeedForward) is one implementation, chosen in of().
 */
sealed interface FeedForwardTraining permits FeedForwardTraining.SwiGluMlp {
    // m[n, d] = feedForward(x[n, d])
    void forward(float[] m, float[] x);

    // dx[n, d] = the input gradient, and the weight gradients written whole, from dm[n, d] and the forward's x[n, d]
    void backward(float[] dx, float[] dm, float[] x);

    /** The feed-forward of a layer's weights (w: packed for the products, grads: where their gradients go), for n rows. */
    static FeedForwardTraining of(FeedForward<TrainingKernels.Matrix> w, FeedForward<float[]> grads, TrainingKernels kernels,
                                  int n, int dim, int hidden, Scratch scratch) {
        return switch (w) {
            case SwiGlu<TrainingKernels.Matrix> mlp -> new SwiGluMlp(mlp, (SwiGlu<float[]>) grads, kernels, n, dim, hidden, scratch);
        };
    }

    /** Gradient buffers shared by every layer's feed-forward, [R, F] each (R: the most rows a layer has). */
    record Scratch(float[] dS, float[] dG, float[] dU) {
        static Scratch of(int rows, int hidden) {
            return new Scratch(new float[rows * hidden], new float[rows * hidden], new float[rows * hidden]);
        }
    }

    /** The SwiGLU MLP: m = w2 . s, s = silu(g) * u, g = w1 . x, u = w3 . x; keeps g, u and s [n, F]. */
    final class SwiGluMlp implements FeedForwardTraining {
        private final SwiGlu<TrainingKernels.Matrix> w;
        private final SwiGlu<float[]> grads;
        private final TrainingKernels kernels;
        private final int n;
        private final int dim;
        private final int hidden;
        private final Scratch scratch;
        final float[] g;
        final float[] u;
        final float[] s;

        SwiGluMlp(SwiGlu<TrainingKernels.Matrix> w, SwiGlu<float[]> grads, TrainingKernels kernels, int n, int dim, int hidden,
                  Scratch scratch) {
            this.w = w;
            this.grads = grads;
            this.kernels = kernels;
            this.n = n;
            this.dim = dim;
            this.hidden = hidden;
            this.scratch = scratch;
            g = new float[n * hidden];
            u = new float[n * hidden];
            s = new float[n * hidden];
        }

        @Override
        public void forward(float[] m, float[] x) {
            kernels.matmul(g, x, w.w1(), n);
            kernels.matmul(u, x, w.w3(), n);
            kernels.swiglu(s, g, u, n * hidden);
            kernels.matmul(m, s, w.w2(), n);
        }

        @Override
        public void backward(float[] dx, float[] dm, float[] x) {
            float[] dS = scratch.dS();
            float[] dG = scratch.dG();
            float[] dU = scratch.dU();
            kernels.matmulBackwardWeight(grads.w2(), dm, s, n, dim, hidden);
            kernels.matmulBackwardInput(dS, dm, w.w2(), n);
            kernels.swigluBackward(dG, dU, dS, g, u, n * hidden);
            TrainingKernels.Activations packedX = kernels.activations(x, n, dim);
            kernels.matmulBackwardWeight(grads.w1(), dG, packedX, n, hidden);
            kernels.matmulBackwardWeight(grads.w3(), dU, packedX, n, hidden);
            kernels.matmulBackwardInput(dx, dG, w.w1(), n);
            kernels.matmulBackwardInputAdd(dx, dU, w.w3(), n);
        }
    }
}
