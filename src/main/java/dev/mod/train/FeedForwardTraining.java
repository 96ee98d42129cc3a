package dev.mod.train;

import dev.mod.model.FeedForward;
import dev.mod.model.MixtureOfExperts;
import dev.mod.model.ModelConfig;
import dev.mod.model.RouterWeighting;
import dev.mod.model.SwiGlu;

/**
 * Training's feed-forward of one layer over n = B x perSequence rows, a forward and its backward twin: forward keeps
 * what backward needs. Each kind of feed-forward (FeedForward) is one implementation, chosen in of().
 */
sealed interface FeedForwardTraining permits FeedForwardTraining.SwiGluMlp, FeedForwardTraining.Mixture {
    // m[n, d] = feedForward(x[n, d])
    void forward(float[] m, float[] x);

    // dx[n, d] = the input gradient, and the weight gradients written whole, from dm[n, d] and the forward's x[n, d]
    void backward(float[] dx, float[] dm, float[] x);

    /** The feed-forward of a layer's weights (w: packed for the products, grads: where their gradients go). */
    static FeedForwardTraining of(ModelConfig c, FeedForward<TrainingKernels.Matrix> w, FeedForward<float[]> grads,
                                  TrainingKernels kernels, int batch, int perSequence, Scratch scratch) {
        return switch (w) {
            case SwiGlu<TrainingKernels.Matrix> mlp -> new SwiGluMlp(mlp, (SwiGlu<float[]>) grads, kernels, batch * perSequence,
                    c.dim(), c.hiddenDim(), scratch);
            case MixtureOfExperts<TrainingKernels.Matrix> moe -> new Mixture(c, moe, (MixtureOfExperts<float[]>) grads, kernels, batch,
                    perSequence, scratch);
        };
    }

    /**
     * Gradient buffers shared by every layer's feed-forward (R: the most rows a layer has): [R, F] each for a hidden
     * layer's, and for experts an expert's output and input gradients [R, d], its probabilities' [R] and the router
     * logits' [R, E + N] (empty without experts).
     */
    record Scratch(float[] dS, float[] dG, float[] dU, float[] dY, float[] dXs, float[] dP, float[] dLogits) {
        static Scratch of(ModelConfig c, int rows) {
            int hidden = c.hasExperts() ? c.experts().hiddenDim() : c.hiddenDim();
            int expertRows = c.hasExperts() ? rows : 0;
            int routed = c.hasExperts() ? c.experts().routed() : 0;
            return new Scratch(new float[rows * hidden], new float[rows * hidden], new float[rows * hidden],
                    new float[expertRows * c.dim()], new float[expertRows * c.dim()], new float[expertRows], new float[rows * routed]);
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

    /**
     * The mixture of experts (Experts): router logits z = router . x [n, E + N]; each real expert e takes its top k_e rows
     * of each sequence by p_e = softmax(z)_e, runs its SwiGLU on them and adds p_e times its output to theirs. The
     * router learns through the p_e that weight the outputs (the choice itself passes no gradient, as MoD's top-k).
     * Keeps z, and for each expert p_e [n], its rows, their inputs [B k_e, d], g, u, s [B k_e, Fe] and output [B k_e, d].
     */
    final class Mixture implements FeedForwardTraining {
        private final MixtureOfExperts<TrainingKernels.Matrix> w;
        private final MixtureOfExperts<float[]> grads;
        private final TrainingKernels kernels;
        private final int batch;
        private final int perSequence;
        private final int n;
        private final int dim;
        private final int hidden;
        private final int routed;
        private final int taken;
        private final Scratch scratch;
        private final float[] logits;
        private final float[][] p;
        private final int[][] sel;
        private final float[][] xs;
        private final float[][] g;
        private final float[][] u;
        private final float[][] s;
        private final float[][] y;

        Mixture(ModelConfig c, MixtureOfExperts<TrainingKernels.Matrix> w, MixtureOfExperts<float[]> grads, TrainingKernels kernels,
                int batch, int perSequence, Scratch scratch) {
            this.w = w;
            this.grads = grads;
            this.kernels = kernels;
            this.batch = batch;
            this.perSequence = perSequence;
            this.n = batch * perSequence;
            this.dim = c.dim();
            this.hidden = c.experts().hiddenDim();
            this.routed = c.experts().routed();
            this.taken = c.experts().rowsPerExpert(perSequence);
            this.scratch = scratch;
            int experts = c.experts().count();
            int rows = batch * taken;
            logits = new float[n * routed];
            p = new float[experts][n];
            sel = new int[experts][rows];
            xs = new float[experts][rows * dim];
            g = new float[experts][rows * hidden];
            u = new float[experts][rows * hidden];
            s = new float[experts][rows * hidden];
            y = new float[experts][rows * dim];
        }

        @Override
        public void forward(float[] m, float[] x) {
            int rows = batch * taken;
            kernels.matmul(logits, x, w.router(), n);
            kernels.zero(m, n * dim);
            for (int e = 0; e < p.length; e++) {
                MixtureOfExperts.Expert<TrainingKernels.Matrix> expert = w.experts().get(e);
                kernels.expertProbabilities(p[e], logits, e, n, routed);
                kernels.select(sel[e], p[e], batch, perSequence, taken);
                kernels.gather(xs[e], x, sel[e], batch, perSequence, taken, dim);
                kernels.matmul(g[e], xs[e], expert.w1(), rows);
                kernels.matmul(u[e], xs[e], expert.w3(), rows);
                kernels.swiglu(s[e], g[e], u[e], rows * hidden);
                kernels.matmul(y[e], s[e], expert.w2(), rows);
                kernels.scatter(m, y[e], sel[e], p[e], RouterWeighting.RAW, batch, perSequence, taken, dim);
            }
        }

        @Override
        public void backward(float[] dx, float[] dm, float[] x) {
            int rows = batch * taken;
            float[] dY = scratch.dY();
            float[] dXs = scratch.dXs();
            float[] dP = scratch.dP();
            float[] dLogits = scratch.dLogits();
            kernels.zero(dx, n * dim);
            kernels.zero(dLogits, n * routed);
            for (int e = 0; e < p.length; e++) {
                MixtureOfExperts.Expert<TrainingKernels.Matrix> expert = w.experts().get(e);
                MixtureOfExperts.Expert<float[]> grad = grads.experts().get(e);
                kernels.zero(dP, n);
                kernels.scatterBackward(dY, dP, dm, y[e], sel[e], p[e], RouterWeighting.RAW, batch, perSequence, taken, dim);
                kernels.matmulBackwardWeight(grad.w2(), dY, s[e], rows, dim, hidden);
                kernels.matmulBackwardInput(scratch.dS(), dY, expert.w2(), rows);
                kernels.swigluBackward(scratch.dG(), scratch.dU(), scratch.dS(), g[e], u[e], rows * hidden);
                TrainingKernels.Activations packedXs = kernels.activations(xs[e], rows, dim);
                kernels.matmulBackwardWeight(grad.w1(), scratch.dG(), packedXs, rows, hidden);
                kernels.matmulBackwardWeight(grad.w3(), scratch.dU(), packedXs, rows, hidden);
                kernels.matmulBackwardInput(dXs, scratch.dG(), expert.w1(), rows);
                kernels.matmulBackwardInputAdd(dXs, scratch.dU(), expert.w3(), rows);
                kernels.gatherBackward(dx, dXs, sel[e], batch, perSequence, taken, dim);
                kernels.expertProbabilitiesBackward(dLogits, dP, logits, e, n, routed);
            }
            kernels.matmulBackwardWeight(grads.router(), dLogits, x, n, routed, dim);
            kernels.matmulBackwardInputAdd(dx, dLogits, w.router(), n);
        }
    }
}
