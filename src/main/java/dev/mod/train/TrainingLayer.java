package dev.mod.train;

import dev.mod.model.LayerWeights;
import dev.mod.model.ModelConfig;

/**
 * What one layer of a {@link TrainingPlan} keeps from its forward pass for its backward pass, and its weights: the
 * master copies, their gradients, and the products' forms. n = R rows in a dense layer, B * k in a routed one.
 */
final class TrainingLayer {
    final int index;
    final boolean routed;
    final int n;
    final int perSequence;
    final float[] xin;
    final float[] r;
    final int[] sel;
    final int[] target;
    final float[] xs;
    final float[] normed1;
    final float[] q;
    final float[] k;
    final float[] v;
    final float[] att;
    final float[] lse;
    final float[] a;
    final float[] h;
    final float[] normed2;
    final float[] f;
    final float[] predictorHidden;
    final float[] predictorLogit;
    final LayerWeights<float[]> w;
    final LayerWeights<float[]> grad;
    final LayerWeights<TrainingKernels.Matrix> packed;
    final FeedForwardTraining feedForward;
    /** The positions of a dense layer's rows (t of each sequence); a routed layer's are its selection. */
    private final int[] densePositions;

    TrainingLayer(ModelConfig c, int index, LayerWeights<float[]> w, LayerWeights<float[]> grad,
                  LayerWeights<TrainingKernels.Matrix> packed, int batch, int seqLen, int predictorDim, int[] densePositions,
                  FeedForwardTraining.Scratch feedForwardScratch, TrainingKernels kernels) {
        this.index = index;
        this.routed = c.isRouted(index);
        this.w = w;
        this.grad = grad;
        this.packed = packed;
        this.densePositions = densePositions;
        int rows = batch * seqLen;
        this.perSequence = routed ? c.capacityTokens(seqLen) : seqLen;
        this.n = batch * perSequence;
        int d = c.dim();
        int qDim = c.nHeads() * c.headDim();
        xin = new float[rows * d];
        r = routed ? new float[rows] : null;
        sel = routed ? new int[n] : null;
        target = routed ? new int[rows] : null;
        xs = routed ? new float[n * d] : null;
        normed1 = new float[n * d];
        q = new float[n * qDim];
        k = new float[n * c.kvDim()];
        v = new float[n * c.kvDim()];
        att = new float[n * qDim];
        lse = new float[batch * c.nHeads() * perSequence];
        a = new float[n * d];
        h = new float[n * d];
        normed2 = new float[n * d];
        f = new float[n * d];
        feedForward = FeedForwardTraining.of(c, packed.feedForward(), grad.feedForward(), kernels, batch, perSequence, feedForwardScratch);
        predictorHidden = routed && predictorDim > 0 ? new float[rows * predictorDim] : null;
        predictorLogit = routed && predictorDim > 0 ? new float[rows] : null;
    }

    float[] blockIn() {
        return routed ? xs : xin;
    }

    int[] positions() {
        return routed ? sel : densePositions;
    }

    /** The share of rows whose logit (the router's, or the predictor's) agrees with the top-k choice; NaN where there is none. */
    double agreement(boolean predictor) {
        if (!routed || (predictor && predictorLogit == null)) {
            return Double.NaN;
        }
        float[] z = predictor ? predictorLogit : r;
        int agree = 0;
        for (int t = 0; t < target.length; t++) {
            if ((z[t] > 0 ? 1 : 0) == target[t]) {
                agree++;
            }
        }
        return (double) agree / target.length;
    }

    /** The share of rows the router would send through the block causally (logit above 0). */
    double causalFraction() {
        int above = 0;
        for (float z : r) {
            above += z > 0 ? 1 : 0;
        }
        return (double) above / r.length;
    }

    /** Whether the layer's input and output are finite. */
    boolean finite() {
        return finite(xin) && finite(f);
    }

    private static boolean finite(float[] a) {
        for (float x : a) {
            if (!Float.isFinite(x)) {
                return false;
            }
        }
        return true;
    }
}
