package dev.mod.cpu;

import dev.mod.plan.KvCache;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;

/**
 * Attention of new rows against one sequence's KV cache, for generation: a chunk is one (query row, head)
 * pair, which scores the cache rows it may see, takes their softmax and sums the values weighted by it.
 * At a decode step there is one query row, so the heads are the parallel work; the cost is reading the
 * cache once. Keys come transposed, so a vector of scores (one per key) is dh broadcast-FMAs along rows
 * of the cache, and values come head by head, so a head's values are one contiguous run: both are read as
 * streams, which is what a decode step at a long context is bound by. Scores live in one scratch row per worker that grows with the longest cache seen. A BF16 cache
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
    private float scale;

    CacheAttention(int workers) {
        scores = new float[workers][0];
    }

    // out[row0 + i, H * dh] = softmax over cache rows j <= start + i of q[row0 + i] . k[j] / sqrt(dh), times v[j], i < n;
    // kT [Hkv * dh, stride], v [Hkv, stride, dh]
    void attend(WorkerPool pool, float[] out, float[] q, int row0, int n, float[] kT, int stride, float[] v, int start,
                int nHeads, int nKvHeads, int dh) {
        this.kT = kT;
        this.v = v;
        dispatch(pool, out, q, row0, n, stride, start, nHeads, nKvHeads, dh);
    }

    // the same against a BF16 cache: keyPairs [Hkv * dh / 2, stride], valuePairs [Hkv, (stride + 1) / 2, dh] (see KvCache)
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
            valuesBf16(p, visible, inv, qOff, (h / group) * ((stride + 1) / 2) * dh);
        } else {
            values(p, visible, inv, qOff, (h / group) * stride * dh);
        }
    }

    // p[visible] = q[qOff, dh] . k[j] of the head's keys (kvOff), j < visible. Row by row of the transposed keys, two
    // rows a turn, adding into p (in L1): each row is read from start to end, so the head's keys are one stream
    // (reading 64 rows a few vectors at a time read them at a third of that rate); the sum per key is in the same
    // order as across the rows within a register.
    private void scores(float[] p, int visible, int qOff, int kvOff) {
        Arrays.fill(p, 0, visible, 0f);
        int e = 0;
        for (; e + 1 < dh; e += 2) {
            int row = (kvOff + e) * stride;
            int next = row + stride;
            FloatVector x0 = FloatVector.broadcast(S, q[qOff + e]);
            FloatVector x1 = FloatVector.broadcast(S, q[qOff + e + 1]);
            int j = 0;
            for (; j + L <= visible; j += L) {
                FloatVector.fromArray(S, kT, next + j).fma(x1, FloatVector.fromArray(S, kT, row + j).fma(x0,
                        FloatVector.fromArray(S, p, j))).intoArray(p, j);
            }
            for (; j < visible; j++) {
                p[j] = Math.fma(kT[next + j], q[qOff + e + 1], Math.fma(kT[row + j], q[qOff + e], p[j]));
            }
        }
        for (; e < dh; e++) {
            int row = (kvOff + e) * stride;
            FloatVector x = FloatVector.broadcast(S, q[qOff + e]);
            int j = 0;
            for (; j + L <= visible; j += L) {
                FloatVector.fromArray(S, kT, row + j).fma(x, FloatVector.fromArray(S, p, j)).intoArray(p, j);
            }
            for (; j < visible; j++) {
                p[j] = Math.fma(kT[row + j], q[qOff + e], p[j]);
            }
        }
    }

    // p[visible] = q[qOff, dh] . k[j] against a BF16 cache: row by row of pairs of dims, as scores
    private void scoresBf16(float[] p, int visible, int qOff, int kvOff) {
        int[] k = keyPairs;
        Arrays.fill(p, 0, visible, 0f);
        for (int e = 0; e < dh; e += 2) {
            int row = (kvOff + e) / 2 * stride;
            FloatVector x0 = FloatVector.broadcast(S, q[qOff + e]);
            FloatVector x1 = FloatVector.broadcast(S, q[qOff + e + 1]);
            int j = 0;
            for (; j + L <= visible; j += L) {
                IntVector pair = IntVector.fromArray(I, k, row + j);
                pair.and(0xFFFF0000).reinterpretAsFloats().fma(x1, pair.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats()
                        .fma(x0, FloatVector.fromArray(S, p, j))).intoArray(p, j);
            }
            for (; j < visible; j++) {
                int pair = k[row + j];
                p[j] = Math.fma(KvCache.unpair(pair, 1), q[qOff + e + 1], Math.fma(KvCache.unpair(pair, 0), q[qOff + e], p[j]));
            }
        }
    }

    // out[qOff, dh] = inv * sum over j < visible of p[j] v[j] of the head's values, [stride, dh] from vBase
    private void values(float[] p, int visible, float inv, int qOff, int vBase) {
        // four vectors of the head at a time, each value row read once, contiguously; two rows a turn (the same order
        // as one a turn)
        int e = 0;
        for (; e + 4 * L <= dh; e += 4 * L) {
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
            int j = 0;
            for (; j + 1 < visible; j += 2) {
                int row = vBase + j * dh + e;
                int next = row + dh;
                FloatVector w0 = FloatVector.broadcast(S, p[j]);
                FloatVector w1 = FloatVector.broadcast(S, p[j + 1]);
                FloatVector v0 = FloatVector.fromArray(S, v, row);
                FloatVector v1 = FloatVector.fromArray(S, v, row + L);
                FloatVector v2 = FloatVector.fromArray(S, v, row + 2 * L);
                FloatVector v3 = FloatVector.fromArray(S, v, row + 3 * L);
                FloatVector u0 = FloatVector.fromArray(S, v, next);
                FloatVector u1 = FloatVector.fromArray(S, v, next + L);
                FloatVector u2 = FloatVector.fromArray(S, v, next + 2 * L);
                FloatVector u3 = FloatVector.fromArray(S, v, next + 3 * L);
                a0 = u0.fma(w1, v0.fma(w0, a0));
                a1 = u1.fma(w1, v1.fma(w0, a1));
                a2 = u2.fma(w1, v2.fma(w0, a2));
                a3 = u3.fma(w1, v3.fma(w0, a3));
            }
            for (; j < visible; j++) {
                int row = vBase + j * dh + e;
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
                acc = FloatVector.fromArray(S, v, vBase + j * dh + e).fma(FloatVector.broadcast(S, p[j]), acc);
            }
            acc.mul(inv).intoArray(out, qOff + e);
        }
        for (; e < dh; e++) {
            float acc = 0;
            for (int j = 0; j < visible; j++) {
                acc = Math.fma(p[j], v[vBase + j * dh + e], acc);
            }
            out[qOff + e] = acc * inv;
        }
    }

    // out[qOff, dh] = inv * sum over j < visible of p[j] v[j] against a BF16 cache: a pair of rows per int (the low half
    // row 2m, the high half row 2m + 1); with an odd number of visible rows the last pair's high half is not read (it
    // may hold a row that was truncated away)
    private void valuesBf16(float[] p, int visible, float inv, int qOff, int vBase) {
        int[] v = valuePairs;
        int e = 0;
        for (; e + 4 * L <= dh; e += 4 * L) {
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
            int j = 0;
            for (; j + 1 < visible; j += 2) {
                int row = vBase + j / 2 * dh + e;
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
                int row = vBase + j / 2 * dh + e;
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
                acc = Math.fma(p[j], KvCache.unpair(v[vBase + j / 2 * dh + e], j % 2), acc);
            }
            out[qOff + e] = acc * inv;
        }
    }
}
