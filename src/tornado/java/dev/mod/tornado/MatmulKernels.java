package dev.mod.tornado;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * out = x . w^T with x [rows, in] and w [outDim, in] (weights stored [out, in], so both operands are read
 * along k), in two layouts of the same product, each with the same fused epilogues:
 * <ul>
 * <li>{@link #matmulTiled}, for GPUs: a 64 x 64 output tile per work-group of 16 x 16 items, x and w staged
 * in local memory 16 columns of k at a time (transposed, padded by one word against bank conflicts), each
 * item holding a 4 x 4 register block whose rows and columns are 16 apart, so that neighbouring items
 * read neighbouring words;</li>
 * <li>{@link #matmulRows}, for CPU devices (PoCL): each item computes 4 rows x 2 columns straight from
 * global memory with k innermost; the OpenCL compiler vectorises that loop as eight reductions (which it
 * does only when TornadoVM emits a*b+c rather than fma(), see scripts/tornado-options).</li>
 * <li>{@link #matmulVector}, for few rows on GPUs (a decode step, a small routed layer): the matrix-vector
 * form, a work-group per column pair, its items striding over k and adding up in local memory, so each
 * weight row is read once, coalesced, by one work-group.</li>
 * </ul>
 * An item's two columns (of its 4 x 4 block in the tiled form: columns 0/1 and 2/3) are PAIR apart within
 * blocks of 2 * PAIR columns: oa = (g / PAIR) * 2 * PAIR + g % PAIR and ob = oa + PAIR. The SwiGLU
 * epilogue relies on it: the fused w1/w3 weight holds PAIR gate rows then PAIR up rows in turn, so each
 * item has a gate and its up value in registers.
 * This class must be compiled with debug information (see TornadoKernels).
 */
public final class MatmulKernels {
    private MatmulKernels() {
    }

    /** Epilogue: out[r, o] = acc. */
    public static final int STORE = 0;
    /** Epilogue: out[r, j] = silu(gate) * up for j < width, the pair's gate and up columns (see class comment). */
    public static final int SWIGLU = 1;
    /**
     * Epilogue: out[t, o] += gain * (extra[r, o] + acc) with t = (r / perSeq) * seqLen + map[r] the row's place
     * in the residual stream; gain 1 (gainMode 0), the router logit gains[t] (1) or its sigmoid (2).
     */
    public static final int RESIDUAL = 2;

    /** Columns between the two columns of an item (the gate/up interleave of the fused w1/w3 weight). */
    public static final int PAIR = 16;
    /** Tiled form: the output tile of a work-group, its k step, and the items along each side (16 x 16). */
    public static final int TILE = 64;
    public static final int TILE_K = 16;
    public static final int TILE_ITEMS = 16;
    /** Rows form: rows per item. */
    public static final int ROWS_PER_ITEM = 4;
    /** Vector form: the most rows it takes, and the items of its work-group (a power of two). */
    public static final int VECTOR_ROWS = 4;
    public static final int VECTOR_ITEMS = 64;

    // Every layout takes rows, the most rows its grid was made for, and live[0], the rows there are in this run (at
    // most rows): a causal plan's routed layer learns on the device how many rows it picked, and items past them do
    // nothing. The forward plan passes live[0] = rows.

    // out (see epilogue) from x[rows, in] . w[outDim, in]^T; one item per 4 rows x 2 columns (oa, oa + PAIR).
    // Grid: (items >= ceil(outDim / (2 PAIR)) * PAIR, ceil(rows / 4)), any local size along x.
    public static void matmulRows(KernelContext context, FloatArray x, FloatArray w, FloatArray out, FloatArray extra,
                                  IntArray map, FloatArray gains, IntArray live, int rows, int in, int outDim, int epilogue, int width,
                                  int seqLen, int perSeq, int gainMode) {
        int g = context.globalIdx;
        int r0 = context.globalIdy * ROWS_PER_ITEM;
        int oa = (g / PAIR) * 2 * PAIR + g % PAIR;
        int ob = oa + PAIR;
        int n = live.get(0);
        // Rows and columns past the edge read a valid row and are not stored.
        if (oa < outDim && r0 < n) {
            int x0 = r0 * in;
            int x1 = TornadoMath.min(r0 + 1, n - 1) * in;
            int x2 = TornadoMath.min(r0 + 2, n - 1) * in;
            int x3 = TornadoMath.min(r0 + 3, n - 1) * in;
            int wa = oa * in;
            int wb = TornadoMath.min(ob, outDim - 1) * in;
            float s0a = 0f;
            float s0b = 0f;
            float s1a = 0f;
            float s1b = 0f;
            float s2a = 0f;
            float s2b = 0f;
            float s3a = 0f;
            float s3b = 0f;
            for (int k = 0; k < in; k++) {
                float a = w.get(wa + k);
                float b = w.get(wb + k);
                float v0 = x.get(x0 + k);
                float v1 = x.get(x1 + k);
                float v2 = x.get(x2 + k);
                float v3 = x.get(x3 + k);
                s0a += v0 * a;
                s0b += v0 * b;
                s1a += v1 * a;
                s1b += v1 * b;
                s2a += v2 * a;
                s2b += v2 * b;
                s3a += v3 * a;
                s3b += v3 * b;
            }
            for (int i = 0; i < ROWS_PER_ITEM; i++) {
                float va = i == 0 ? s0a : i == 1 ? s1a : i == 2 ? s2a : s3a;
                float vb = i == 0 ? s0b : i == 1 ? s1b : i == 2 ? s2b : s3b;
                finish(out, extra, map, gains, r0 + i, oa, va, vb, n, outDim, epilogue, width, seqLen, perSeq, gainMode);
            }
        }
    }

    // out (see epilogue) from x[rows, in] . w[outDim, in]^T; a TILE x TILE output tile per work-group.
    // Grid: (ceil(outDim / TILE) * 16, ceil(rows / TILE) * 16), local (16, 16).
    public static void matmulTiled(KernelContext context, FloatArray x, FloatArray w, FloatArray out, FloatArray extra,
                                   IntArray map, FloatArray gains, IntArray live, int rows, int in, int outDim, int epilogue, int width,
                                   int seqLen, int perSeq, int gainMode) {
        int lx = context.localIdx;
        int ly = context.localIdy;
        int r0 = context.groupIdy * TILE;
        int n = live.get(0);
        int o0 = context.groupIdx * TILE;
        int item = ly * TILE_ITEMS + lx;
        int side = TILE + 1;
        float[] xTile = context.allocateFloatLocalArray(TILE_K * (TILE + 1));
        float[] wTile = context.allocateFloatLocalArray(TILE_K * (TILE + 1));
        float[] acc = new float[16];
        for (int i = 0; i < 16; i++) {
            acc[i] = 0f;
        }
        for (int k0 = 0; k0 < in; k0 += TILE_K) {
            // 256 items stage 64 rows x 16 k of each operand, 4 words each, reading along k.
            for (int e = 0; e < 4; e++) {
                int idx = item + e * TILE_ITEMS * TILE_ITEMS;
                int row = idx / TILE_K;
                int kk = idx % TILE_K;
                int k = k0 + kk;
                xTile[kk * side + row] = r0 + row < n && k < in ? x.get((r0 + row) * in + k) : 0f;
                wTile[kk * side + row] = o0 + row < outDim && k < in ? w.get((o0 + row) * in + k) : 0f;
            }
            context.localBarrier();
            for (int kk = 0; kk < TILE_K; kk++) {
                int base = kk * side;
                float a0 = xTile[base + ly];
                float a1 = xTile[base + ly + 16];
                float a2 = xTile[base + ly + 32];
                float a3 = xTile[base + ly + 48];
                float b0 = wTile[base + lx];
                float b1 = wTile[base + lx + 16];
                float b2 = wTile[base + lx + 32];
                float b3 = wTile[base + lx + 48];
                acc[0] += a0 * b0;
                acc[1] += a0 * b1;
                acc[2] += a0 * b2;
                acc[3] += a0 * b3;
                acc[4] += a1 * b0;
                acc[5] += a1 * b1;
                acc[6] += a1 * b2;
                acc[7] += a1 * b3;
                acc[8] += a2 * b0;
                acc[9] += a2 * b1;
                acc[10] += a2 * b2;
                acc[11] += a2 * b3;
                acc[12] += a3 * b0;
                acc[13] += a3 * b1;
                acc[14] += a3 * b2;
                acc[15] += a3 * b3;
            }
            context.localBarrier();
        }
        for (int i = 0; i < 4; i++) {
            int r = r0 + ly + 16 * i;
            finish(out, extra, map, gains, r, o0 + lx, acc[i * 4], acc[i * 4 + 1], n, outDim, epilogue, width, seqLen, perSeq, gainMode);
            finish(out, extra, map, gains, r, o0 + lx + 32, acc[i * 4 + 2], acc[i * 4 + 3], n, outDim, epilogue, width, seqLen, perSeq,
                    gainMode);
        }
    }

    // out (see epilogue) from x[rows <= VECTOR_ROWS, in] . w[outDim, in]^T; a work-group per column pair (oa, oa + PAIR).
    // Grid: (ceil(outDim / (2 PAIR)) * PAIR * VECTOR_ITEMS), local VECTOR_ITEMS.
    public static void matmulVector(KernelContext context, FloatArray x, FloatArray w, FloatArray out, FloatArray extra,
                                    IntArray map, FloatArray gains, IntArray live, int rows, int in, int outDim, int epilogue, int width,
                                    int seqLen, int perSeq, int gainMode) {
        int g = context.groupIdx;
        int item = context.localIdx;
        int oa = (g / PAIR) * 2 * PAIR + g % PAIR;
        int n = live.get(0);
        int wa = TornadoMath.min(oa, outDim - 1) * in;
        int wb = TornadoMath.min(oa + PAIR, outDim - 1) * in;
        // With no rows (a routed layer that picked none) every row reads row 0 and none is stored.
        int x1 = TornadoMath.max(TornadoMath.min(1, n - 1), 0) * in;
        int x2 = TornadoMath.max(TornadoMath.min(2, n - 1), 0) * in;
        int x3 = TornadoMath.max(TornadoMath.min(3, n - 1), 0) * in;
        float[] partial = context.allocateFloatLocalArray(2 * VECTOR_ROWS * VECTOR_ITEMS);
        float s0a = 0f;
        float s0b = 0f;
        float s1a = 0f;
        float s1b = 0f;
        float s2a = 0f;
        float s2b = 0f;
        float s3a = 0f;
        float s3b = 0f;
        for (int k = item; k < in; k += VECTOR_ITEMS) {
            float a = w.get(wa + k);
            float b = w.get(wb + k);
            float v0 = x.get(k);
            float v1 = x.get(x1 + k);
            float v2 = x.get(x2 + k);
            float v3 = x.get(x3 + k);
            s0a += v0 * a;
            s0b += v0 * b;
            s1a += v1 * a;
            s1b += v1 * b;
            s2a += v2 * a;
            s2b += v2 * b;
            s3a += v3 * a;
            s3b += v3 * b;
        }
        partial[item] = s0a;
        partial[VECTOR_ITEMS + item] = s0b;
        partial[2 * VECTOR_ITEMS + item] = s1a;
        partial[3 * VECTOR_ITEMS + item] = s1b;
        partial[4 * VECTOR_ITEMS + item] = s2a;
        partial[5 * VECTOR_ITEMS + item] = s2b;
        partial[6 * VECTOR_ITEMS + item] = s3a;
        partial[7 * VECTOR_ITEMS + item] = s3b;
        context.localBarrier();
        for (int stride = VECTOR_ITEMS / 2; stride > 0; stride /= 2) {
            if (item < stride) {
                for (int j = 0; j < 2 * VECTOR_ROWS; j++) {
                    partial[j * VECTOR_ITEMS + item] += partial[j * VECTOR_ITEMS + item + stride];
                }
            }
            context.localBarrier();
        }
        if (item == 0) {
            for (int i = 0; i < VECTOR_ROWS; i++) {
                finish(out, extra, map, gains, i, oa, partial[2 * i * VECTOR_ITEMS], partial[(2 * i + 1) * VECTOR_ITEMS], n, outDim,
                        epilogue, width, seqLen, perSeq, gainMode);
            }
        }
    }

    // The epilogue for row r and the column pair (oa, oa + PAIR) holding va and vb; see STORE, SWIGLU, RESIDUAL.
    private static void finish(FloatArray out, FloatArray extra, IntArray map, FloatArray gains, int r, int oa, float va, float vb,
                               int rows, int outDim, int epilogue, int width, int seqLen, int perSeq, int gainMode) {
        int ob = oa + PAIR;
        if (r < rows) {
            if (epilogue == SWIGLU) {
                int j = (oa / (2 * PAIR)) * PAIR + oa % PAIR;
                if (j < width) {
                    out.set(r * width + j, va / (1f + TornadoMath.exp(-va)) * vb);
                }
            } else if (epilogue == RESIDUAL) {
                int t = (r / perSeq) * seqLen + map.get(r);
                float gain = TornadoKernels.gain(gains, t, gainMode);
                if (oa < outDim) {
                    out.set(t * outDim + oa, out.get(t * outDim + oa) + gain * (extra.get(r * outDim + oa) + va));
                }
                if (ob < outDim) {
                    out.set(t * outDim + ob, out.get(t * outDim + ob) + gain * (extra.get(r * outDim + ob) + vb));
                }
            } else {
                if (oa < outDim) {
                    out.set(r * outDim + oa, va);
                }
                if (ob < outDim) {
                    out.set(r * outDim + ob, vb);
                }
            }
        }
    }
}
