package dev.mod.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Attention of new rows against one sequence's KV cache, for generation: a chunk is one (query row, head)
 * pair, which scores the cache rows it may see, takes their softmax and sums the values weighted by it.
 * At a decode step there is one query row, so the heads are the parallel work; the cost is reading the
 * cache once. Keys come transposed, so a vector of scores (one per key) is dh broadcast-FMAs along rows
 * of the cache. Scores live in one scratch row per worker that grows with the longest cache seen.
 */
final class CacheAttention implements WorkerPool.Task {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();

    private final float[][] scores;

    private float[] out;
    private float[] q;
    private float[] kT;
    private int stride;
    private float[] v;
    private int row0;
    private int start;
    private int nHeads;
    private int group;
    private int dh;
    private int kvDim;
    private float scale;

    CacheAttention(int workers) {
        scores = new float[workers][0];
    }

    // out[row0 + i, H * dh] = softmax over cache rows j <= start + i of q[row0 + i] . k[j] / sqrt(dh), times v[j], i < n;
    // kT [Hkv * dh, stride], v [start + n, Hkv * dh]
    void attend(WorkerPool pool, float[] out, float[] q, int row0, int n, float[] kT, int stride, float[] v, int start,
                int nHeads, int nKvHeads, int dh) {
        for (int w = 0; w < scores.length; w++) {
            if (scores[w].length < start + n) {
                scores[w] = new float[Math.max(start + n, 2 * scores[w].length)];
            }
        }
        this.out = out;
        this.q = q;
        this.kT = kT;
        this.stride = stride;
        this.v = v;
        this.row0 = row0;
        this.start = start;
        this.nHeads = nHeads;
        this.group = nHeads / nKvHeads;
        this.dh = dh;
        this.kvDim = nKvHeads * dh;
        this.scale = (float) (1.0 / Math.sqrt(dh));
        pool.run(this, n * nHeads);
        this.out = null;
        this.q = null;
        this.kT = null;
        this.v = null;
    }

    @Override
    public void run(int chunk, int worker) {
        int i = chunk / nHeads;
        int h = chunk % nHeads;
        int visible = start + i + 1;
        int qOff = (row0 + i) * nHeads * dh + h * dh;
        int kvOff = (h / group) * dh;
        float[] p = scores[worker];
        // four vectors of keys at a time: four independent FMA chains hide the FMA latency
        int j = 0;
        for (; j + 4 * L <= visible; j += 4 * L) {
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
            for (int e = 0; e < dh; e++) {
                int row = (kvOff + e) * stride + j;
                FloatVector x = FloatVector.broadcast(S, q[qOff + e]);
                a0 = FloatVector.fromArray(S, kT, row).fma(x, a0);
                a1 = FloatVector.fromArray(S, kT, row + L).fma(x, a1);
                a2 = FloatVector.fromArray(S, kT, row + 2 * L).fma(x, a2);
                a3 = FloatVector.fromArray(S, kT, row + 3 * L).fma(x, a3);
            }
            a0.intoArray(p, j);
            a1.intoArray(p, j + L);
            a2.intoArray(p, j + 2 * L);
            a3.intoArray(p, j + 3 * L);
        }
        for (; j + L <= visible; j += L) {
            FloatVector acc = FloatVector.zero(S);
            for (int e = 0; e < dh; e++) {
                acc = FloatVector.fromArray(S, kT, (kvOff + e) * stride + j).fma(FloatVector.broadcast(S, q[qOff + e]), acc);
            }
            acc.intoArray(p, j);
        }
        for (; j < visible; j++) {
            float acc = 0;
            for (int e = 0; e < dh; e++) {
                acc = Math.fma(kT[(kvOff + e) * stride + j], q[qOff + e], acc);
            }
            p[j] = acc;
        }
        float max = Float.NEGATIVE_INFINITY;
        for (j = 0; j < visible; j++) {
            max = Math.max(max, p[j]);
        }
        VectorMath.exp(p, 0, p, 0, visible, scale, scale * max);
        float inv = 1f / VectorMath.sum(p, 0, visible);
        // four vectors of the head at a time, each value row read once, contiguously
        int e = 0;
        for (; e + 4 * L <= dh; e += 4 * L) {
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
            for (j = 0; j < visible; j++) {
                int row = j * kvDim + kvOff + e;
                FloatVector w = FloatVector.broadcast(S, p[j]);
                a0 = FloatVector.fromArray(S, v, row).fma(w, a0);
                a1 = FloatVector.fromArray(S, v, row + L).fma(w, a1);
                a2 = FloatVector.fromArray(S, v, row + 2 * L).fma(w, a2);
                a3 = FloatVector.fromArray(S, v, row + 3 * L).fma(w, a3);
            }
            a0.mul(inv).intoArray(out, qOff + e);
            a1.mul(inv).intoArray(out, qOff + e + L);
            a2.mul(inv).intoArray(out, qOff + e + 2 * L);
            a3.mul(inv).intoArray(out, qOff + e + 3 * L);
        }
        for (; e + L <= dh; e += L) {
            FloatVector acc = FloatVector.zero(S);
            for (j = 0; j < visible; j++) {
                acc = FloatVector.fromArray(S, v, j * kvDim + kvOff + e).fma(FloatVector.broadcast(S, p[j]), acc);
            }
            acc.mul(inv).intoArray(out, qOff + e);
        }
        for (; e < dh; e++) {
            float acc = 0;
            for (j = 0; j < visible; j++) {
                acc = Math.fma(p[j], v[j * kvDim + kvOff + e], acc);
            }
            out[qOff + e] = acc * inv;
        }
    }
}
