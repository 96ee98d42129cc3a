package dev.mod.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
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
final class CausalAttention implements WorkerPool.Task {
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

    CausalAttention(int workers) {
        probs = new float[workers][];
    }

    // out[B, n, H * dh] = softmax(q k^T / sqrt(dh), causal) v; q[B, n, H * dh], k and v [B, n, Hkv * dh]
    void attend(WorkerPool pool, float[] out, float[] q, float[] k, float[] v,
                int batch, int n, int nHeads, int nKvHeads, int dh) {
        int needed = batch * n * nKvHeads * dh;
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
        transposing = true;
        pool.run(this, batch * nKvHeads);
        transposing = false;
        pool.run(this, batch * nHeads * queryBlocks);
        this.out = null;
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

    // keysT[b, g, e, j] = k[b, j, g * dh + e]
    private void transposeKeys(int b, int g) {
        int kvDim = nKvHeads * dh;
        int dst = (b * nKvHeads + g) * dh * n;
        for (int j = 0; j < n; j++) {
            int src = (b * n + j) * kvDim + g * dh;
            for (int e = 0; e < dh; e++) {
                keysT[dst + e * n + j] = k[src + e];
            }
        }
    }

    // out rows i0 .. i0+3 of head h in sequence b
    private void attendBlock(int b, int h, int i0, int worker) {
        if (probs[worker] == null || probs[worker].length < QB * n) {
            probs[worker] = new float[QB * n];
        }
        float[] p = probs[worker];
        int rowsHere = Math.min(QB, n - i0);
        int keys = i0 + rowsHere; // keys 0 .. i0+rowsHere-1 are visible to some row of the block
        int g = h / (nHeads / nKvHeads);
        int qDim = nHeads * dh;
        int kt = (b * nKvHeads + g) * dh * n;
        int q0 = (b * n + i0) * qDim + h * dh;
        // rows past the sequence end reuse the last row's query; their results are not stored
        int q1 = rowsHere > 1 ? q0 + qDim : q0;
        int q2 = rowsHere > 2 ? q0 + 2 * qDim : q0;
        int q3 = rowsHere > 3 ? q0 + 3 * qDim : q0;
        float scale = (float) (1.0 / Math.sqrt(dh));

        // scores: p[m, j] = (q_m . k_j) * scale for j < keys
        for (int j = 0; j < keys; j += L) {
            VectorMask<Float> m = S.indexInRange(j, keys);
            FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
            for (int e = 0; e < dh; e++) {
                FloatVector kv = FloatVector.fromArray(S, keysT, kt + e * n + j, m);
                s0 = kv.fma(FloatVector.broadcast(S, q[q0 + e]), s0);
                s1 = kv.fma(FloatVector.broadcast(S, q[q1 + e]), s1);
                s2 = kv.fma(FloatVector.broadcast(S, q[q2 + e]), s2);
                s3 = kv.fma(FloatVector.broadcast(S, q[q3 + e]), s3);
            }
            s0.mul(scale).intoArray(p, j, m);
            s1.mul(scale).intoArray(p, n + j, m);
            s2.mul(scale).intoArray(p, 2 * n + j, m);
            s3.mul(scale).intoArray(p, 3 * n + j, m);
        }
        // softmax of row m over keys 0 .. i0+m; the masked keys get weight 0
        float inv0 = softmaxRow(p, 0, i0 + 1, keys);
        float inv1 = softmaxRow(p, n, Math.min(i0 + 2, keys), keys);
        float inv2 = softmaxRow(p, 2 * n, Math.min(i0 + 3, keys), keys);
        float inv3 = softmaxRow(p, 3 * n, Math.min(i0 + 4, keys), keys);

        // out_m = sum_j p[m, j] v_j / sum_m
        int kvDim = nKvHeads * dh;
        int vBase = b * n * kvDim + g * dh;
        int o0 = (b * n + i0) * qDim + h * dh;
        for (int e = 0; e < dh; e += L) {
            VectorMask<Float> m = S.indexInRange(e, dh);
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
            for (int j = 0; j < keys; j++) {
                FloatVector vj = FloatVector.fromArray(S, v, vBase + j * kvDim + e, m);
                a0 = vj.fma(FloatVector.broadcast(S, p[j]), a0);
                a1 = vj.fma(FloatVector.broadcast(S, p[n + j]), a1);
                a2 = vj.fma(FloatVector.broadcast(S, p[2 * n + j]), a2);
                a3 = vj.fma(FloatVector.broadcast(S, p[3 * n + j]), a3);
            }
            a0.mul(inv0).intoArray(out, o0 + e, m);
            if (rowsHere > 1) {
                a1.mul(inv1).intoArray(out, o0 + qDim + e, m);
            }
            if (rowsHere > 2) {
                a2.mul(inv2).intoArray(out, o0 + 2 * qDim + e, m);
            }
            if (rowsHere > 3) {
                a3.mul(inv3).intoArray(out, o0 + 3 * qDim + e, m);
            }
        }
    }

    /** Row p[base .. base+keys): exp(s - max) over the first `visible`, 0 after; returns 1 / sum. */
    private static float softmaxRow(float[] p, int base, int visible, int keys) {
        float max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < visible; j++) {
            max = Math.max(max, p[base + j]);
        }
        FloatVector sum = FloatVector.zero(S);
        FloatVector maxV = FloatVector.broadcast(S, max);
        for (int j = 0; j < keys; j += L) {
            VectorMask<Float> m = S.indexInRange(j, visible);
            FloatVector e = VectorMath.exp(FloatVector.fromArray(S, p, base + j, m).sub(maxV)).blend(0f, m.not());
            sum = sum.add(e);
            e.intoArray(p, base + j, S.indexInRange(j, keys));
        }
        return 1f / VectorMath.sum(sum);
    }
}
