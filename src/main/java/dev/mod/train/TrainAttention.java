package dev.mod.train;

import dev.mod.cpu.VectorMath;
import dev.mod.cpu.WorkerPool;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The backward twin of causal attention (the forward is the cpu backend's {@link dev.mod.cpu.CausalAttention},
 * which also keeps each row's log-sum-exp for this pass). Rows are in ascending position order within each
 * sequence, so row j is visible to row i when j <= i. The probabilities are recomputed from the log-sum-exp
 * (as flash attention does), so memory grows with T, not T^2.
 *
 * Work is split by (sequence, kv head): the chunk owns the gradients of that kv head's keys and values and
 * of its query heads, so no two threads write the same gradient and results do not depend on the thread
 * count. A chunk first transposes its keys and values to [dh, n], rows padded to whole vectors, so that the
 * loops over the visible rows that give one number per row (scores, dp, and the gradients of keys and
 * values) are broadcast-FMAs along contiguous rows; dq, a sum over rows, adds whole rows of k. No loop
 * takes a horizontal sum per pair of rows.
 */
final class TrainAttention implements WorkerPool.Task {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();

    private final WorkerPool pool;
    /** Per worker: keys^T, values^T, and in the backward pass their gradients, [dh, nPad] each. */
    private final float[][] keysT;
    private final float[][] valuesT;
    private final float[][] dKeysT;
    private final float[][] dValuesT;
    /** Per worker: a row's probabilities and their gradient, [nPad]. */
    private final float[][] probs;
    private final float[][] dProbs;

    private float[] out;
    private float[] lse;
    private float[] q;
    private float[] k;
    private float[] v;
    private float[] dout;
    private float[] dq;
    private float[] dk;
    private float[] dv;
    private int n;
    private int nPad;
    private int nHeads;
    private int nKvHeads;
    private int dh;

    TrainAttention(WorkerPool pool, int workers) {
        this.pool = pool;
        keysT = new float[workers][0];
        valuesT = new float[workers][0];
        dKeysT = new float[workers][0];
        dValuesT = new float[workers][0];
        probs = new float[workers][0];
        dProbs = new float[workers][0];
    }

    // dq, dk, dv (written) from dout[B, n, H * dh] and the forward's q, k, v, out, lse
    void backward(float[] dq, float[] dk, float[] dv, float[] dout, float[] out, float[] lse, float[] q, float[] k, float[] v,
                  int batch, int n, int nHeads, int nKvHeads, int dh) {
        set(n, nHeads, nKvHeads, dh);
        this.dq = dq;
        this.dk = dk;
        this.dv = dv;
        this.dout = dout;
        this.out = out;
        this.lse = lse;
        this.q = q;
        this.k = k;
        this.v = v;
        pool.run(this, batch * nKvHeads);
    }

    private void set(int n, int nHeads, int nKvHeads, int dh) {
        this.n = n;
        this.nPad = (n + L - 1) / L * L;
        this.nHeads = nHeads;
        this.nKvHeads = nKvHeads;
        this.dh = dh;
        for (int w = 0; w < keysT.length; w++) {
            if (keysT[w].length < dh * nPad) {
                keysT[w] = new float[dh * nPad];
                valuesT[w] = new float[dh * nPad];
                dKeysT[w] = new float[dh * nPad];
                dValuesT[w] = new float[dh * nPad];
            }
            if (probs[w].length < nPad) {
                probs[w] = new float[nPad];
                dProbs[w] = new float[nPad];
            }
        }
    }

    @Override
    public void run(int chunk, int worker) {
        int b = chunk / nKvHeads;
        int g = chunk % nKvHeads;
        float[] kT = keysT[worker];
        float[] vT = valuesT[worker];
        transpose(k, kT, b, g);
        transpose(v, vT, b, g);
        backwardChunk(b, g, kT, vT, dKeysT[worker], dValuesT[worker], probs[worker], dProbs[worker]);
    }

    // xT[e, j] = x[b, j, g * dh + e]; padding columns n .. nPad stay zero
    private void transpose(float[] x, float[] xT, int b, int g) {
        int kvDim = nKvHeads * dh;
        for (int j = 0; j < n; j++) {
            int row = (b * n + j) * kvDim + g * dh;
            for (int e = 0; e < dh; e++) {
                xT[e * nPad + j] = x[row + e];
            }
        }
    }

    // p[0, jEnd) = q[qi, dh] . kT[:, j] for every j (rows past `visible` are computed and later zeroed)
    private void scores(float[] p, int qi, float[] kT, int jEnd) {
        java.util.Arrays.fill(p, 0, jEnd, 0f);
        for (int e = 0; e < dh; e++) {
            FloatVector qe = FloatVector.broadcast(S, q[qi + e]);
            int row = e * nPad;
            for (int j = 0; j < jEnd; j += L) {
                FloatVector.fromArray(S, kT, row + j).fma(qe, FloatVector.fromArray(S, p, j)).intoArray(p, j);
            }
        }
    }

    // y[yi, dh] = scale * sum over j < visible of w[j] * x[b, j, g * dh .. + dh] (x row-major [B, n, Hkv * dh]):
    // row after row, so no horizontal sums
    private void weightedRows(float[] y, int yi, float[] w, float[] x, int b, int g, int visible, float scale) {
        int kvDim = nKvHeads * dh;
        java.util.Arrays.fill(y, yi, yi + dh, 0f);
        int vectorEnd = dh / L * L;
        for (int j = 0; j < visible; j++) {
            int row = (b * n + j) * kvDim + g * dh;
            FloatVector wj = FloatVector.broadcast(S, w[j]);
            for (int e = 0; e < vectorEnd; e += L) {
                FloatVector.fromArray(S, x, row + e).fma(wj, FloatVector.fromArray(S, y, yi + e)).intoArray(y, yi + e);
            }
            for (int e = vectorEnd; e < dh; e++) {
                y[yi + e] = Math.fma(w[j], x[row + e], y[yi + e]);
            }
        }
        for (int e = 0; e < dh; e++) {
            y[yi + e] *= scale;
        }
    }

    private void backwardChunk(int b, int g, float[] kT, float[] vT, float[] dkT, float[] dvT, float[] p, float[] ds) {
        int qDim = nHeads * dh;
        int kvDim = nKvHeads * dh;
        int group = nHeads / nKvHeads;
        float scale = (float) (1 / Math.sqrt(dh));
        java.util.Arrays.fill(dkT, 0, dh * nPad, 0f);
        java.util.Arrays.fill(dvT, 0, dh * nPad, 0f);
        for (int h = g * group; h < (g + 1) * group; h++) {
            for (int i = 0; i < n; i++) {
                int visible = i + 1;
                int jEnd = (visible + L - 1) / L * L;
                int qi = (b * n + i) * qDim + h * dh;
                // p = softmax row i, recomputed from the forward's log-sum-exp
                scores(p, qi, kT, jEnd);
                VectorMath.exp(p, 0, p, 0, visible, scale, lse[(b * nHeads + h) * n + i]);
                java.util.Arrays.fill(p, visible, jEnd, 0f);
                // ds = p * (dout . v_j - dout . out) * scale
                java.util.Arrays.fill(ds, 0, jEnd, 0f);
                for (int e = 0; e < dh; e++) {
                    FloatVector de = FloatVector.broadcast(S, dout[qi + e]);
                    int row = e * nPad;
                    for (int j = 0; j < jEnd; j += L) {
                        FloatVector.fromArray(S, vT, row + j).fma(de, FloatVector.fromArray(S, ds, j)).intoArray(ds, j);
                    }
                }
                float delta = VectorMath.dot(dout, qi, out, qi, dh);
                FloatVector deltaV = FloatVector.broadcast(S, delta);
                FloatVector scaleV = FloatVector.broadcast(S, scale);
                for (int j = 0; j < jEnd; j += L) {
                    FloatVector.fromArray(S, ds, j).sub(deltaV).mul(FloatVector.fromArray(S, p, j)).mul(scaleV).intoArray(ds, j);
                }
                weightedRows(dq, qi, ds, k, b, g, visible, 1);
                for (int e = 0; e < dh; e++) {
                    int row = e * nPad;
                    FloatVector qe = FloatVector.broadcast(S, q[qi + e]);
                    FloatVector de = FloatVector.broadcast(S, dout[qi + e]);
                    for (int j = 0; j < jEnd; j += L) {
                        FloatVector.fromArray(S, ds, j).fma(qe, FloatVector.fromArray(S, dkT, row + j)).intoArray(dkT, row + j);
                        FloatVector.fromArray(S, p, j).fma(de, FloatVector.fromArray(S, dvT, row + j)).intoArray(dvT, row + j);
                    }
                }
            }
        }
        for (int j = 0; j < n; j++) {
            int row = (b * n + j) * kvDim + g * dh;
            for (int e = 0; e < dh; e++) {
                dk[row + e] = dkT[e * nPad + j];
                dv[row + e] = dvT[e * nPad + j];
            }
        }
    }
}
