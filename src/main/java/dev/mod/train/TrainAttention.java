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
    /** Query rows per block: each vector of keys, values and their gradients is loaded once for four rows. */
    private static final int QB = 4;

    private final WorkerPool pool;
    /** Per worker: keys^T, values^T, and in the backward pass their gradients, [dh, nPad] each. */
    private final float[][] keysT;
    private final float[][] valuesT;
    private final float[][] dKeysT;
    private final float[][] dValuesT;
    /** Per worker: four rows' probabilities and their gradients, [4, nPad]. */
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
            if (probs[w].length < QB * nPad) {
                probs[w] = new float[QB * nPad];
                dProbs[w] = new float[QB * nPad];
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

    // P[m, j] = x_m . yT[:, j] for the four rows m (x_m = src[xm .. xm + dh)) and every j < keysPad: each vector of
    // yT is loaded once for the four rows
    private void blockDots(float[] P, float[] src, int x0, int x1, int x2, int x3, float[] yT, int keysPad) {
        for (int j = 0; j < keysPad; j += L) {
            FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
            for (int e = 0; e < dh; e++) {
                FloatVector y = FloatVector.fromArray(S, yT, e * nPad + j);
                s0 = y.fma(FloatVector.broadcast(S, src[x0 + e]), s0);
                s1 = y.fma(FloatVector.broadcast(S, src[x1 + e]), s1);
                s2 = y.fma(FloatVector.broadcast(S, src[x2 + e]), s2);
                s3 = y.fma(FloatVector.broadcast(S, src[x3 + e]), s3);
            }
            s0.intoArray(P, j);
            s1.intoArray(P, nPad + j);
            s2.intoArray(P, 2 * nPad + j);
            s3.intoArray(P, 3 * nPad + j);
        }
    }

    /**
     * Query rows i0 .. i0+3 of head h (rows past the sequence reuse row i0's vectors; their probabilities are
     * zero, so they add nothing): recompute the probabilities from the log-sum-exp, then
     * ds = p * (dout . v_j - dout . out) * scale, dq = ds . k, dk += ds^T q, dv += p^T dout.
     */
    private void backwardBlock(int b, int g, int h, int i0, float[] kT, float[] vT, float[] dkT, float[] dvT,
                               float[] p, float[] ds) {
        int qDim = nHeads * dh;
        int kvDim = nKvHeads * dh;
        float scale = (float) (1 / Math.sqrt(dh));
        int rowsHere = Math.min(QB, n - i0);
        int keys = i0 + rowsHere;
        int keysPad = (keys + L - 1) / L * L;
        int r0 = (b * n + i0) * qDim + h * dh;
        int r1 = rowsHere > 1 ? r0 + qDim : r0;
        int r2 = rowsHere > 2 ? r0 + 2 * qDim : r0;
        int r3 = rowsHere > 3 ? r0 + 3 * qDim : r0;
        blockDots(p, q, r0, r1, r2, r3, kT, keysPad);
        blockDots(ds, dout, r0, r1, r2, r3, vT, keysPad);
        FloatVector scaleV = FloatVector.broadcast(S, scale);
        for (int m = 0; m < QB; m++) {
            int base = m * nPad;
            if (m >= rowsHere) {
                java.util.Arrays.fill(p, base, base + keysPad, 0f);
                java.util.Arrays.fill(ds, base, base + keysPad, 0f);
                continue;
            }
            int visible = i0 + m + 1;
            VectorMath.exp(p, base, p, base, visible, scale, lse[(b * nHeads + h) * n + i0 + m]);
            java.util.Arrays.fill(p, base + visible, base + keysPad, 0f);
            int row = r0 + m * qDim;
            FloatVector delta = FloatVector.broadcast(S, VectorMath.dot(dout, row, out, row, dh));
            for (int j = 0; j < keysPad; j += L) {
                FloatVector.fromArray(S, ds, base + j).sub(delta).mul(FloatVector.fromArray(S, p, base + j)).mul(scaleV)
                        .intoArray(ds, base + j);
            }
        }
        queryGradients(b, g, r0, rowsHere, keys, ds);
        keyValueGradients(r0, r1, r2, r3, keysPad, p, ds, dkT, dvT);
    }

    // dq_m = sum_j ds_m[j] k_j for the block's rows (from r0, qDim apart): rows of k, each loaded once for the four
    private void queryGradients(int b, int g, int r0, int rowsHere, int keys, float[] ds) {
        int qDim = nHeads * dh;
        int kvDim = nKvHeads * dh;
        int kBase = b * n * kvDim + g * dh;
        int e = 0;
        for (; e + L <= dh; e += L) {
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
            for (int j = 0; j < keys; j++) {
                FloatVector kv = FloatVector.fromArray(S, k, kBase + j * kvDim + e);
                a0 = kv.fma(FloatVector.broadcast(S, ds[j]), a0);
                a1 = kv.fma(FloatVector.broadcast(S, ds[nPad + j]), a1);
                a2 = kv.fma(FloatVector.broadcast(S, ds[2 * nPad + j]), a2);
                a3 = kv.fma(FloatVector.broadcast(S, ds[3 * nPad + j]), a3);
            }
            a0.intoArray(dq, r0 + e);
            if (rowsHere > 1) {
                a1.intoArray(dq, r0 + qDim + e);
            }
            if (rowsHere > 2) {
                a2.intoArray(dq, r0 + 2 * qDim + e);
            }
            if (rowsHere > 3) {
                a3.intoArray(dq, r0 + 3 * qDim + e);
            }
        }
        for (; e < dh; e++) {
            for (int m = 0; m < rowsHere; m++) {
                float acc = 0;
                for (int j = 0; j < keys; j++) {
                    acc = Math.fma(ds[m * nPad + j], k[kBase + j * kvDim + e], acc);
                }
                dq[r0 + m * qDim + e] = acc;
            }
        }
    }

    // dkT[e, j] += sum_m ds_m[j] q_m[e], dvT[e, j] += sum_m p_m[j] dout_m[e]: one load and store per four rows
    private void keyValueGradients(int r0, int r1, int r2, int r3, int keysPad, float[] p, float[] ds,
                                   float[] dkT, float[] dvT) {
        for (int j = 0; j < keysPad; j += L) {
            FloatVector s0 = FloatVector.fromArray(S, ds, j);
            FloatVector s1 = FloatVector.fromArray(S, ds, nPad + j);
            FloatVector s2 = FloatVector.fromArray(S, ds, 2 * nPad + j);
            FloatVector s3 = FloatVector.fromArray(S, ds, 3 * nPad + j);
            FloatVector p0 = FloatVector.fromArray(S, p, j);
            FloatVector p1 = FloatVector.fromArray(S, p, nPad + j);
            FloatVector p2 = FloatVector.fromArray(S, p, 2 * nPad + j);
            FloatVector p3 = FloatVector.fromArray(S, p, 3 * nPad + j);
            for (int c = 0; c < dh; c++) {
                int at = c * nPad + j;
                FloatVector dkv = FloatVector.fromArray(S, dkT, at);
                dkv = s0.fma(FloatVector.broadcast(S, q[r0 + c]), dkv);
                dkv = s1.fma(FloatVector.broadcast(S, q[r1 + c]), dkv);
                dkv = s2.fma(FloatVector.broadcast(S, q[r2 + c]), dkv);
                dkv = s3.fma(FloatVector.broadcast(S, q[r3 + c]), dkv);
                dkv.intoArray(dkT, at);
                FloatVector dvv = FloatVector.fromArray(S, dvT, at);
                dvv = p0.fma(FloatVector.broadcast(S, dout[r0 + c]), dvv);
                dvv = p1.fma(FloatVector.broadcast(S, dout[r1 + c]), dvv);
                dvv = p2.fma(FloatVector.broadcast(S, dout[r2 + c]), dvv);
                dvv = p3.fma(FloatVector.broadcast(S, dout[r3 + c]), dvv);
                dvv.intoArray(dvT, at);
            }
        }
    }

    private void backwardChunk(int b, int g, float[] kT, float[] vT, float[] dkT, float[] dvT, float[] p, float[] ds) {
        int kvDim = nKvHeads * dh;
        int group = nHeads / nKvHeads;
        java.util.Arrays.fill(dkT, 0, dh * nPad, 0f);
        java.util.Arrays.fill(dvT, 0, dh * nPad, 0f);
        for (int h = g * group; h < (g + 1) * group; h++) {
            for (int i0 = 0; i0 < n; i0 += QB) {
                backwardBlock(b, g, h, i0, kT, vT, dkT, dvT, p, ds);
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
