package dev.mod.cpu;

import dev.mod.plan.KvCache;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Attention of new rows against one sequence's KV cache, for generation: a chunk is one (query row, head)
 * pair, which scores the cache rows it may see, takes their softmax and sums the values weighted by it.
 * At a decode step there is one query row, so the heads are the parallel work; the cost is reading the
 * cache once. Keys come transposed, so a vector of scores (one per key) is dh broadcast-FMAs along rows
 * of the cache. Scores live in one scratch row per worker that grows with the longest cache seen. A BF16 cache
 * (see KvCache) is widened in registers, two rows of a pair per int vector: keys paired by dim, values by row.
 */
final class CacheAttention implements WorkerPool.Task {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;

    private final float[][] scores;

    private float[] out;
    private float[] q;
    private float[] kT;
    private float[] v;
    private int[] keyPairs;   // BF16 cache, else null
    private int[] valuePairs;
    private int stride;
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
        this.kT = kT;
        this.v = v;
        dispatch(pool, out, q, row0, n, stride, start, nHeads, nKvHeads, dh);
    }

    // the same against a BF16 cache: keyPairs [Hkv * dh / 2, stride], valuePairs [(start + n + 1) / 2, Hkv * dh] (see KvCache)
    void attendBf16(WorkerPool pool, float[] out, float[] q, int row0, int n, int[] keyPairs, int stride, int[] valuePairs,
                    int start, int nHeads, int nKvHeads, int dh) {
        this.keyPairs = keyPairs;
        this.valuePairs = valuePairs;
        dispatch(pool, out, q, row0, n, stride, start, nHeads, nKvHeads, dh);
    }

    // sets the call's fields (the cache's arrays are set by the caller) and runs its (row, head) chunks
    private void dispatch(WorkerPool pool, float[] out, float[] q, int row0, int n, int stride, int start, int nHeads,
                          int nKvHeads, int dh) {
        for (int w = 0; w < scores.length; w++) {
            if (scores[w].length < start + n) {
                scores[w] = new float[Math.max(start + n, 2 * scores[w].length)];
            }
        }
        this.out = out;
        this.q = q;
        this.stride = stride;
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
        this.keyPairs = null;
        this.valuePairs = null;
    }

    @Override
    public void run(int chunk, int worker) {
        int i = chunk / nHeads;
        int h = chunk % nHeads;
        int visible = start + i + 1;
        int qOff = (row0 + i) * nHeads * dh + h * dh;
        int kvOff = (h / group) * dh;
        float[] p = scores[worker];
        if (keyPairs != null) {
            scoresBf16(p, visible, qOff, kvOff);
        } else {
            scores(p, visible, qOff, kvOff);
        }
        float max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < visible; j++) {
            max = Math.max(max, p[j]);
        }
        VectorMath.exp(p, 0, p, 0, visible, scale, scale * max);
        float inv = 1f / VectorMath.sum(p, 0, visible);
        if (valuePairs != null) {
            valuesBf16(p, visible, inv, qOff, kvOff);
        } else {
            values(p, visible, inv, qOff, kvOff);
        }
    }

    // p[visible] = q[qOff, dh] . k[j] of the head's keys (kvOff), j < visible
    private void scores(float[] p, int visible, int qOff, int kvOff) {
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
    }

    // p[visible] = q[qOff, dh] . k[j] against a BF16 cache: a pair of dims per int, eight vectors of keys at a time (runs
    // of 512 bytes along each row of pairs: 10% less time than runs of four vectors, where the F32 scores gained nothing)
    private void scoresBf16(float[] p, int visible, int qOff, int kvOff) {
        int[] k = keyPairs;
        int j = 0;
        for (; j + 8 * L <= visible; j += 8 * L) {
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
            for (int e = 0; e < dh; e += 2) {
                int row = (kvOff + e) / 2 * stride + j;
                FloatVector x0 = FloatVector.broadcast(S, q[qOff + e]);
                FloatVector x1 = FloatVector.broadcast(S, q[qOff + e + 1]);
                IntVector k0 = IntVector.fromArray(I, k, row);
                IntVector k1 = IntVector.fromArray(I, k, row + L);
                IntVector k2 = IntVector.fromArray(I, k, row + 2 * L);
                IntVector k3 = IntVector.fromArray(I, k, row + 3 * L);
                IntVector k4 = IntVector.fromArray(I, k, row + 4 * L);
                IntVector k5 = IntVector.fromArray(I, k, row + 5 * L);
                IntVector k6 = IntVector.fromArray(I, k, row + 6 * L);
                IntVector k7 = IntVector.fromArray(I, k, row + 7 * L);
                a0 = k0.and(0xFFFF0000).reinterpretAsFloats().fma(x1, k0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(x0, a0));
                a1 = k1.and(0xFFFF0000).reinterpretAsFloats().fma(x1, k1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(x0, a1));
                a2 = k2.and(0xFFFF0000).reinterpretAsFloats().fma(x1, k2.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(x0, a2));
                a3 = k3.and(0xFFFF0000).reinterpretAsFloats().fma(x1, k3.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(x0, a3));
                a4 = k4.and(0xFFFF0000).reinterpretAsFloats().fma(x1, k4.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(x0, a4));
                a5 = k5.and(0xFFFF0000).reinterpretAsFloats().fma(x1, k5.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(x0, a5));
                a6 = k6.and(0xFFFF0000).reinterpretAsFloats().fma(x1, k6.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(x0, a6));
                a7 = k7.and(0xFFFF0000).reinterpretAsFloats().fma(x1, k7.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(x0, a7));
            }
            a0.intoArray(p, j);
            a1.intoArray(p, j + L);
            a2.intoArray(p, j + 2 * L);
            a3.intoArray(p, j + 3 * L);
            a4.intoArray(p, j + 4 * L);
            a5.intoArray(p, j + 5 * L);
            a6.intoArray(p, j + 6 * L);
            a7.intoArray(p, j + 7 * L);
        }
        for (; j + L <= visible; j += L) {
            FloatVector acc = FloatVector.zero(S);
            for (int e = 0; e < dh; e += 2) {
                IntVector pair = IntVector.fromArray(I, k, (kvOff + e) / 2 * stride + j);
                acc = pair.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(FloatVector.broadcast(S, q[qOff + e]), acc);
                acc = pair.and(0xFFFF0000).reinterpretAsFloats().fma(FloatVector.broadcast(S, q[qOff + e + 1]), acc);
            }
            acc.intoArray(p, j);
        }
        for (; j < visible; j++) {
            float acc = 0;
            for (int e = 0; e < dh; e += 2) {
                int pair = k[(kvOff + e) / 2 * stride + j];
                acc = Math.fma(KvCache.unpair(pair, 0), q[qOff + e], acc);
                acc = Math.fma(KvCache.unpair(pair, 1), q[qOff + e + 1], acc);
            }
            p[j] = acc;
        }
    }

    // out[qOff, dh] = inv * sum over j < visible of p[j] v[j] of the head's values (kvOff)
    private void values(float[] p, int visible, float inv, int qOff, int kvOff) {
        // four vectors of the head at a time, each value row read once, contiguously
        int e = 0;
        for (; e + 4 * L <= dh; e += 4 * L) {
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
            for (int j = 0; j < visible; j++) {
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
            for (int j = 0; j < visible; j++) {
                acc = FloatVector.fromArray(S, v, j * kvDim + kvOff + e).fma(FloatVector.broadcast(S, p[j]), acc);
            }
            acc.mul(inv).intoArray(out, qOff + e);
        }
        for (; e < dh; e++) {
            float acc = 0;
            for (int j = 0; j < visible; j++) {
                acc = Math.fma(p[j], v[j * kvDim + kvOff + e], acc);
            }
            out[qOff + e] = acc * inv;
        }
    }

    // out[qOff, dh] = inv * sum over j < visible of p[j] v[j] against a BF16 cache: a pair of rows per int (the low half
    // row 2m, the high half row 2m + 1); with an odd number of visible rows the last pair's high half is not read (it
    // may hold a row that was truncated away)
    private void valuesBf16(float[] p, int visible, float inv, int qOff, int kvOff) {
        int[] v = valuePairs;
        int e = 0;
        for (; e + 4 * L <= dh; e += 4 * L) {
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
            int j = 0;
            for (; j + 1 < visible; j += 2) {
                int row = j / 2 * kvDim + kvOff + e;
                FloatVector w0 = FloatVector.broadcast(S, p[j]);
                FloatVector w1 = FloatVector.broadcast(S, p[j + 1]);
                IntVector v0 = IntVector.fromArray(I, v, row);
                IntVector v1 = IntVector.fromArray(I, v, row + L);
                IntVector v2 = IntVector.fromArray(I, v, row + 2 * L);
                IntVector v3 = IntVector.fromArray(I, v, row + 3 * L);
                a0 = v0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(w0, a0);
                a1 = v1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(w0, a1);
                a2 = v2.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(w0, a2);
                a3 = v3.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(w0, a3);
                a0 = v0.and(0xFFFF0000).reinterpretAsFloats().fma(w1, a0);
                a1 = v1.and(0xFFFF0000).reinterpretAsFloats().fma(w1, a1);
                a2 = v2.and(0xFFFF0000).reinterpretAsFloats().fma(w1, a2);
                a3 = v3.and(0xFFFF0000).reinterpretAsFloats().fma(w1, a3);
            }
            if (j < visible) {
                int row = j / 2 * kvDim + kvOff + e;
                FloatVector w0 = FloatVector.broadcast(S, p[j]);
                a0 = IntVector.fromArray(I, v, row).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(w0, a0);
                a1 = IntVector.fromArray(I, v, row + L).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(w0, a1);
                a2 = IntVector.fromArray(I, v, row + 2 * L).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(w0, a2);
                a3 = IntVector.fromArray(I, v, row + 3 * L).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(w0, a3);
            }
            a0.mul(inv).intoArray(out, qOff + e);
            a1.mul(inv).intoArray(out, qOff + e + L);
            a2.mul(inv).intoArray(out, qOff + e + 2 * L);
            a3.mul(inv).intoArray(out, qOff + e + 3 * L);
        }
        for (; e < dh; e++) {
            float acc = 0;
            for (int j = 0; j < visible; j++) {
                acc = Math.fma(p[j], KvCache.unpair(v[j / 2 * kvDim + kvOff + e], j % 2), acc);
            }
            out[qOff + e] = acc * inv;
        }
    }
}
