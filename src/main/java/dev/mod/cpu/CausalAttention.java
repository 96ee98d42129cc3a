package dev.mod.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Causal softmax attention over the rows of each sequence, block-wise: a chunk is 4 query rows of one
 * head, which compute their scores against the keys they may see (kept as 4 rows of at most T floats
 * per worker, so memory grows with T, not T^2), a softmax, then the weighted sum of values with 4
 * accumulators per vector of the head. Keys are first transposed to [B, Hkv, dh, n] so that scores
 * come out of broadcast-FMA loops without horizontal sums.
 *
 * Rows must be in ascending position order within each sequence (the plan guarantees it: dense layers
 * use 0..T-1, routed layers the ascending selection), so "position j <= position i" is "j <= i".
 */
public final class CausalAttention implements WorkerPool.Task {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final int QB = 4;

    private final float[][] probs;
    private float[] keysT = new float[0];

    private boolean transposing;
    private float[] out;
    private float[] q;
    private float[] k;
    private float[] v;
    private int n;
    private int nHeads;
    private int nKvHeads;
    private int dh;
    private int queryBlocks;
    /** n rounded up to whole vectors, plus one vector: the row stride of the transposed keys and of the scores. */
    private int nPad;

    /** Where each row's log-sum-exp of its scaled scores goes, [B, H, n] (training keeps it); null: nowhere. */
    private float[] lse;

    public CausalAttention(int workers) {
        probs = new float[workers][];
    }

    // out[B, n, H * dh] = softmax(q k^T / sqrt(dh), causal) v; q[B, n, H * dh], k and v [B, n, Hkv * dh]
    void attend(WorkerPool pool, float[] out, float[] q, float[] k, float[] v,
                int batch, int n, int nHeads, int nKvHeads, int dh) {
        attend(pool, out, null, q, k, v, batch, n, nHeads, nKvHeads, dh);
    }

    // the same, and lse[B, H, n] = log sum_j exp(q_i . k_j / sqrt(dh)) of each row (for the backward pass)
    public void attend(WorkerPool pool, float[] out, float[] lse, float[] q, float[] k, float[] v,
                       int batch, int n, int nHeads, int nKvHeads, int dh) {
        this.lse = lse;
        // rows a whole number of vectors long, plus one vector so that rows do not sit a multiple of
        // 4 KB apart (which would map them all to the same L1 sets)
        int padded = (n + L - 1) / L * L + L;
        int needed = batch * padded * nKvHeads * dh;
        if (keysT.length < needed) {
            keysT = new float[needed];
        }
        this.out = out;
        this.q = q;
        this.k = k;
        this.v = v;
        this.n = n;
        this.nHeads = nHeads;
        this.nKvHeads = nKvHeads;
        this.dh = dh;
        this.queryBlocks = (n + QB - 1) / QB;
        this.nPad = padded;
        transposing = true;
        pool.run(this, batch * nKvHeads);
        transposing = false;
        pool.run(this, batch * nHeads * queryBlocks);
        this.out = null;
        this.lse = null;
        this.q = null;
        this.k = null;
        this.v = null;
    }

    @Override
    public void run(int chunk, int worker) {
        if (transposing) {
            transposeKeys(chunk / nKvHeads, chunk % nKvHeads);
        } else {
            int block = chunk % queryBlocks;
            int bh = chunk / queryBlocks;
            attendBlock(bh / nHeads, bh % nHeads, block * QB, worker);
        }
    }

    // keysT[b, g, e, j] = k[b, j, g * dh + e], rows padded with zeros to a whole number of vectors
    private void transposeKeys(int b, int g) {
        int kvDim = nKvHeads * dh;
        int dst = (b * nKvHeads + g) * dh * nPad;
        for (int j = 0; j < n; j++) {
            int src = (b * n + j) * kvDim + g * dh;
            for (int e = 0; e < dh; e++) {
                keysT[dst + e * nPad + j] = k[src + e];
            }
        }
        for (int e = 0; e < dh; e++) {
            java.util.Arrays.fill(keysT, dst + e * nPad + n, dst + (e + 1) * nPad, 0f);
        }
    }

    // out rows i0 .. i0+3 of head h in sequence b
    private void attendBlock(int b, int h, int i0, int worker) {
        if (probs[worker] == null || probs[worker].length < QB * nPad) {
            probs[worker] = new float[QB * nPad];
        }
        float[] p = probs[worker];
        int rowsHere = Math.min(QB, n - i0);
        int keys = i0 + rowsHere; // keys 0 .. keys-1 are visible to some row of the block
        int keysPad = (keys + 2 * L - 1) / (2 * L) * (2 * L);
        int g = h / (nHeads / nKvHeads);
        int qDim = nHeads * dh;
        int kt = (b * nKvHeads + g) * dh * nPad;
        int q0 = (b * n + i0) * qDim + h * dh;
        // rows past the sequence end reuse the first row's query; their results are not stored
        int q1 = rowsHere > 1 ? q0 + qDim : q0;
        int q2 = rowsHere > 2 ? q0 + 2 * qDim : q0;
        int q3 = rowsHere > 3 ? q0 + 3 * qDim : q0;
        float scale = (float) (1.0 / Math.sqrt(dh));

        // scores: p[m, j] = (q_m . k_j) * scale for j < keysPad (zero keys in the padding), two vectors of keys at a time
        for (int j = 0; j < keysPad; j += 2 * L) {
            FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
            FloatVector t0 = s0, t1 = s0, t2 = s0, t3 = s0;
            for (int e = 0; e < dh; e++) {
                int row = kt + e * nPad + j;
                FloatVector ka = FloatVector.fromArray(S, keysT, row);
                FloatVector kb = FloatVector.fromArray(S, keysT, row + L);
                FloatVector b0 = FloatVector.broadcast(S, q[q0 + e]);
                FloatVector b1 = FloatVector.broadcast(S, q[q1 + e]);
                FloatVector b2 = FloatVector.broadcast(S, q[q2 + e]);
                FloatVector b3 = FloatVector.broadcast(S, q[q3 + e]);
                s0 = ka.fma(b0, s0);
                s1 = ka.fma(b1, s1);
                s2 = ka.fma(b2, s2);
                s3 = ka.fma(b3, s3);
                t0 = kb.fma(b0, t0);
                t1 = kb.fma(b1, t1);
                t2 = kb.fma(b2, t2);
                t3 = kb.fma(b3, t3);
            }
            s0.mul(scale).intoArray(p, j);
            s1.mul(scale).intoArray(p, nPad + j);
            s2.mul(scale).intoArray(p, 2 * nPad + j);
            s3.mul(scale).intoArray(p, 3 * nPad + j);
            t0.mul(scale).intoArray(p, j + L);
            t1.mul(scale).intoArray(p, nPad + j + L);
            t2.mul(scale).intoArray(p, 2 * nPad + j + L);
            t3.mul(scale).intoArray(p, 3 * nPad + j + L);
        }
        // softmax of row m over keys 0 .. i0+m; later keys get weight 0
        int lseRow = (b * nHeads + h) * n + i0;
        float inv0 = softmaxRow(p, 0, i0 + 1, keys, lse, lseRow);
        float inv1 = softmaxRow(p, nPad, Math.min(i0 + 2, keys), keys, rowsHere > 1 ? lse : null, lseRow + 1);
        float inv2 = softmaxRow(p, 2 * nPad, Math.min(i0 + 3, keys), keys, rowsHere > 2 ? lse : null, lseRow + 2);
        float inv3 = softmaxRow(p, 3 * nPad, Math.min(i0 + 4, keys), keys, rowsHere > 3 ? lse : null, lseRow + 3);

        // out_m = sum_j p[m, j] v_j / sum_m
        int kvDim = nKvHeads * dh;
        int vBase = b * n * kvDim + g * dh;
        int o0 = (b * n + i0) * qDim + h * dh;
        int e = 0;
        for (; e + 2 * L <= dh; e += 2 * L) {
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
            FloatVector c0 = a0, c1 = a0, c2 = a0, c3 = a0;
            for (int j = 0; j <= i0; j++) {
                int row = vBase + j * kvDim + e;
                FloatVector va = FloatVector.fromArray(S, v, row);
                FloatVector vb = FloatVector.fromArray(S, v, row + L);
                FloatVector b0 = FloatVector.broadcast(S, p[j]);
                FloatVector b1 = FloatVector.broadcast(S, p[nPad + j]);
                FloatVector b2 = FloatVector.broadcast(S, p[2 * nPad + j]);
                FloatVector b3 = FloatVector.broadcast(S, p[3 * nPad + j]);
                a0 = va.fma(b0, a0);
                a1 = va.fma(b1, a1);
                a2 = va.fma(b2, a2);
                a3 = va.fma(b3, a3);
                c0 = vb.fma(b0, c0);
                c1 = vb.fma(b1, c1);
                c2 = vb.fma(b2, c2);
                c3 = vb.fma(b3, c3);
            }
            // The block's own later keys: row m sees key i0 + d only for d <= m. A masked key is skipped, not
            // added with weight 0, so that a non-finite value at a later position never reaches an earlier one.
            // Written out key by key: a vector loaded once and used under conditions was boxed on the heap by C2.
            int later = keys - i0 - 1;
            if (later >= 1) {
                int row = vBase + (i0 + 1) * kvDim + e;
                FloatVector va = FloatVector.fromArray(S, v, row);
                FloatVector vb = FloatVector.fromArray(S, v, row + L);
                FloatVector b1 = FloatVector.broadcast(S, p[nPad + i0 + 1]);
                FloatVector b2 = FloatVector.broadcast(S, p[2 * nPad + i0 + 1]);
                FloatVector b3 = FloatVector.broadcast(S, p[3 * nPad + i0 + 1]);
                a1 = va.fma(b1, a1);
                c1 = vb.fma(b1, c1);
                a2 = va.fma(b2, a2);
                c2 = vb.fma(b2, c2);
                a3 = va.fma(b3, a3);
                c3 = vb.fma(b3, c3);
            }
            if (later >= 2) {
                int row = vBase + (i0 + 2) * kvDim + e;
                FloatVector va = FloatVector.fromArray(S, v, row);
                FloatVector vb = FloatVector.fromArray(S, v, row + L);
                FloatVector b2 = FloatVector.broadcast(S, p[2 * nPad + i0 + 2]);
                FloatVector b3 = FloatVector.broadcast(S, p[3 * nPad + i0 + 2]);
                a2 = va.fma(b2, a2);
                c2 = vb.fma(b2, c2);
                a3 = va.fma(b3, a3);
                c3 = vb.fma(b3, c3);
            }
            if (later >= 3) {
                int row = vBase + (i0 + 3) * kvDim + e;
                FloatVector b3 = FloatVector.broadcast(S, p[3 * nPad + i0 + 3]);
                a3 = FloatVector.fromArray(S, v, row).fma(b3, a3);
                c3 = FloatVector.fromArray(S, v, row + L).fma(b3, c3);
            }
            a0.mul(inv0).intoArray(out, o0 + e);
            c0.mul(inv0).intoArray(out, o0 + e + L);
            if (rowsHere > 1) {
                a1.mul(inv1).intoArray(out, o0 + qDim + e);
                c1.mul(inv1).intoArray(out, o0 + qDim + e + L);
            }
            if (rowsHere > 2) {
                a2.mul(inv2).intoArray(out, o0 + 2 * qDim + e);
                c2.mul(inv2).intoArray(out, o0 + 2 * qDim + e + L);
            }
            if (rowsHere > 3) {
                a3.mul(inv3).intoArray(out, o0 + 3 * qDim + e);
                c3.mul(inv3).intoArray(out, o0 + 3 * qDim + e + L);
            }
        }
        // a head dim that is not a whole number of vector pairs ends with scalar columns
        for (; e < dh; e++) {
            for (int m = 0; m < rowsHere; m++) {
                float acc = 0;
                for (int j = 0; j <= i0 + m; j++) {
                    acc = Math.fma(p[m * nPad + j], v[vBase + j * kvDim + e], acc);
                }
                out[o0 + m * qDim + e] = acc * (m == 0 ? inv0 : m == 1 ? inv1 : m == 2 ? inv2 : inv3);
            }
        }
    }

    /**
     * Row p[base ..]: exp(s - max) over the first `visible` keys, 0 for the rest up to `keys`; returns 1 / sum.
     * lse[lseIndex] = max + log(sum) when lse is not null.
     */
    private static float softmaxRow(float[] p, int base, int visible, int keys, float[] lse, int lseIndex) {
        float max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < visible; j++) {
            max = Math.max(max, p[base + j]);
        }
        VectorMath.exp(p, base, p, base, visible, 1f, max);
        java.util.Arrays.fill(p, base + visible, base + keys, 0f);
        float sum = VectorMath.sum(p, base, visible);
        if (lse != null) {
            lse[lseIndex] = (float) (max + Math.log(sum));
        }
        return 1f / sum;
    }
}
