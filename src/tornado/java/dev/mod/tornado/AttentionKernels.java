package dev.mod.tornado;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * Causal attention in one pass, flash-style: a work-group per (block of QUERIES queries, head, sequence),
 * one item per query; key and value tiles of KEYS rows staged in local memory by the whole group; online
 * softmax with the query, its running max and sum and its output accumulator in private memory; tiles past
 * the block's last query are never loaded. GQA: head h reads kv head h / (nHeads / nKvHeads).
 * This class must be compiled with debug information (see TornadoKernels).
 */
public final class AttentionKernels {
    private AttentionKernels() {
    }

    /**
     * Queries per work-group (one item each) and keys per staged tile. Two tiles of KEYS x MAX_HEAD_DIM floats are the
     * kernel's local memory: 16 keys make 16 KB (32 made exactly 32 KB, and with the 8 bytes TornadoVM adds to every
     * kernel, more than a 32 KB GPU has: the launch failed).
     */
    public static final int QUERIES = 32;
    public static final int KEYS = 16;
    /** The largest head size the private and local arrays hold. */
    public static final int MAX_HEAD_DIM = 128;

    // out[B * n, H * dh] = softmax(q k^T / sqrt(dh), keys j <= i) v, q, k, v read from qkv[B * n, (H + 2 Hkv) * dh]
    // (q heads, then k heads, then v heads per row; rows of a sequence in ascending position order).
    // Grid: (ceil(n / QUERIES) * QUERIES, H, B), local (QUERIES, 1, 1).
    public static void attention(KernelContext context, FloatArray qkv, FloatArray out, int n, int nHeads, int nKvHeads, int dh) {
        int item = context.localIdx;
        int i0 = context.groupIdx * QUERIES;
        int h = context.groupIdy;
        int b = context.groupIdz;
        int i = i0 + item;
        int query = TornadoMath.min(i, n - 1);
        int stride = (nHeads + 2 * nKvHeads) * dh;
        int kvHead = h / (nHeads / nKvHeads);
        int kOffset = (nHeads + kvHead) * dh;
        int vOffset = (nHeads + nKvHeads + kvHead) * dh;
        float[] keys = context.allocateFloatLocalArray(KEYS * MAX_HEAD_DIM);
        float[] values = context.allocateFloatLocalArray(KEYS * MAX_HEAD_DIM);
        float[] q = new float[MAX_HEAD_DIM];
        float[] acc = new float[MAX_HEAD_DIM];
        float[] scores = new float[KEYS];
        float scale = 1f / TornadoMath.sqrt((float) dh);
        for (int e = 0; e < dh; e++) {
            q[e] = qkv.get((b * n + query) * stride + h * dh + e) * scale;
            acc[e] = 0f;
        }
        float max = -3.0e38f;
        float sum = 0f;
        int last = TornadoMath.min(i0 + QUERIES, n) - 1;
        for (int j0 = 0; j0 <= last; j0 += KEYS) {
            for (int idx = item; idx < KEYS * dh; idx += QUERIES) {
                int j = j0 + idx / dh;
                int e = idx % dh;
                keys[idx] = j < n ? qkv.get((b * n + j) * stride + kOffset + e) : 0f;
                values[idx] = j < n ? qkv.get((b * n + j) * stride + vOffset + e) : 0f;
            }
            context.localBarrier();
            int count = TornadoMath.min(KEYS, query - j0 + 1);
            float tileMax = max;
            for (int jj = 0; jj < count; jj++) {
                float dot = 0f;
                for (int e = 0; e < dh; e++) {
                    dot += q[e] * keys[jj * dh + e];
                }
                scores[jj] = dot;
                tileMax = TornadoMath.max(tileMax, dot);
            }
            if (count > 0) {
                float correction = TornadoMath.exp(max - tileMax);
                sum *= correction;
                for (int e = 0; e < dh; e++) {
                    acc[e] *= correction;
                }
                for (int jj = 0; jj < count; jj++) {
                    float p = TornadoMath.exp(scores[jj] - tileMax);
                    sum += p;
                    for (int e = 0; e < dh; e++) {
                        acc[e] += p * values[jj * dh + e];
                    }
                }
                max = tileMax;
            }
            context.localBarrier();
        }
        if (i < n) {
            for (int e = 0; e < dh; e++) {
                out.set((b * n + i) * nHeads * dh + h * dh + e, acc[e] / sum);
            }
        }
    }

    /** Bytes of local memory attention declares. */
    static final long ATTENTION_LOCAL_BYTES = 2L * KEYS * MAX_HEAD_DIM * Float.BYTES;

    /** Work-items sharing one query's keys in cacheAttention. */
    public static final int SPLIT = 32;
    /** Bytes of local memory cacheAttention declares. */
    static final long CACHE_ATTENTION_LOCAL_BYTES = (2L * SPLIT + (long) SPLIT * MAX_HEAD_DIM) * Float.BYTES;

    // out[rows, H * dh] = softmax(q k^T / sqrt(dh)) v for each picked row against its sequence's cache: q from
    // qkv[rows, (H + 2 Hkv) * dh], keys[S, Hkv * dh, context] (transposed) and values[S, context, Hkv * dh] at
    // slots up to the row's own (pickedSlot = s * context + slot: a chunk's rows were cached in order, each sees
    // those before it). Flash-decoding: a work-group per (row, head), its SPLIT items taking every SPLIT-th key with
    // an online softmax each, then merged through local memory. Rows >= live[0] do nothing (the whole group).
    // Grid: (rows * SPLIT, H), local (SPLIT, 1).
    public static void cacheAttention(KernelContext context, FloatArray qkv, FloatArray out, FloatArray keys, FloatArray values,
                                      IntArray pickedSlot, IntArray live, int nHeads, int nKvHeads, int dh, int cacheRows) {
        int item = context.localIdx;
        int row = context.groupIdx;
        int h = context.groupIdy;
        int n = live.get(0);
        int slot = row < n ? pickedSlot.get(row) : 0;
        int s = slot / cacheRows;
        int last = row < n ? slot % cacheRows : -1;
        int stride = (nHeads + 2 * nKvHeads) * dh;
        int kvDim = nKvHeads * dh;
        int kvHead = h / (nHeads / nKvHeads);
        float[] maxes = context.allocateFloatLocalArray(SPLIT);
        float[] sums = context.allocateFloatLocalArray(SPLIT);
        float[] parts = context.allocateFloatLocalArray(SPLIT * MAX_HEAD_DIM);
        float[] q = new float[MAX_HEAD_DIM];
        float[] acc = new float[MAX_HEAD_DIM];
        float scale = 1f / TornadoMath.sqrt((float) dh);
        for (int e = 0; e < dh; e++) {
            q[e] = row < n ? qkv.get(row * stride + h * dh + e) * scale : 0f;
            acc[e] = 0f;
        }
        float max = -3.0e38f;
        float sum = 0f;
        int keyBase = (s * kvDim + kvHead * dh) * cacheRows;
        int valueBase = s * cacheRows * kvDim + kvHead * dh;
        for (int c = item; c <= last; c += SPLIT) {
            float dot = 0f;
            for (int e = 0; e < dh; e++) {
                dot += q[e] * keys.get(keyBase + e * cacheRows + c);
            }
            float top = TornadoMath.max(max, dot);
            float correction = TornadoMath.exp(max - top);
            float p = TornadoMath.exp(dot - top);
            sum = sum * correction + p;
            for (int e = 0; e < dh; e++) {
                acc[e] = acc[e] * correction + p * values.get(valueBase + c * kvDim + e);
            }
            max = top;
        }
        maxes[item] = max;
        context.localBarrier();
        float top = -3.0e38f;
        for (int i = 0; i < SPLIT; i++) {
            top = TornadoMath.max(top, maxes[i]);
        }
        float weight = TornadoMath.exp(max - top);
        sums[item] = sum * weight;
        for (int e = 0; e < dh; e++) {
            parts[item * MAX_HEAD_DIM + e] = acc[e] * weight;
        }
        context.localBarrier();
        if (row < n) {
            float total = 0f;
            for (int i = 0; i < SPLIT; i++) {
                total += sums[i];
            }
            for (int e = item; e < dh; e += SPLIT) {
                float v = 0f;
                for (int i = 0; i < SPLIT; i++) {
                    v += parts[i * MAX_HEAD_DIM + e];
                }
                out.set(row * nHeads * dh + h * dh + e, v / total);
            }
        }
    }
}
