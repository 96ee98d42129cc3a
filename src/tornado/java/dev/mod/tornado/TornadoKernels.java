package dev.mod.tornado;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * The forward pass's kernels as TornadoVM compiles them to OpenCL C, PTX or SPIR-V: plain static
 * methods, one per operation, parallel over their outputs with @Parallel loops; the projections (a tiled
 * GEMM) and RMSNorm (a work-group reduction per row) on the KernelContext API with local memory. Shapes are in the
 * comment above each; weights are [out, in]. Rows of a sequence are in ascending position order (the
 * plan guarantees it), so causal attention is "key j <= query i".
 * This class must be compiled with debug information: TornadoVM reads @Parallel from the local
 * variable table, and without it a task silently runs as sequential Java.
 */
public final class TornadoKernels {
    private TornadoKernels() {
    }

    // x[rows, d] = emb[tokens[r], :]
    public static void embed(IntArray tokens, FloatArray emb, FloatArray x, int rows, int d) {
        for (@Parallel int idx = 0; idx < rows * d; idx++) {
            int r = idx / d;
            x.set(idx, emb.get(tokens.get(r) * d + idx % d));
        }
    }

    /** Work-items of the work-group that reduces one row (rmsnorm): a power of two. */
    public static final int ROW_GROUP = 64;

    // out[rows, d] = x[rows, d] / sqrt(mean(x[r]^2) + eps) * w[d], one work-group of ROW_GROUP items per row:
    // each item sums the squares of a strided slice, the group adds them up in local memory, then scales.
    // Grid: (rows * ROW_GROUP), local ROW_GROUP.
    public static void rmsnorm(KernelContext context, FloatArray x, FloatArray w, FloatArray out, int rows, int d, float eps) {
        int r = context.groupIdx;
        int item = context.localIdx;
        float[] partial = context.allocateFloatLocalArray(ROW_GROUP);
        float sumSquares = 0f;
        for (int i = item; i < d; i += ROW_GROUP) {
            float v = x.get(r * d + i);
            sumSquares += v * v;
        }
        partial[item] = sumSquares;
        context.localBarrier();
        for (int stride = ROW_GROUP / 2; stride > 0; stride /= 2) {
            if (item < stride) {
                partial[item] += partial[item + stride];
            }
            context.localBarrier();
        }
        float scale = 1f / TornadoMath.sqrt(partial[0] / d + eps);
        for (int i = item; i < d; i += ROW_GROUP) {
            out.set(r * d + i, x.get(r * d + i) * scale * w.get(i));
        }
    }

    /** Side of the square tiles of matmulTiled; its work-groups are TILE x TILE. */
    public static final int TILE = 16;

    // out[rows, outDim] = x[rows, in] . w[outDim, in]^T in TILE x TILE output tiles, one work-item per output:
    // each step stages a TILE x TILE block of x and of w in local memory, so each element is read from
    // global memory once per tile rather than once per output. Grid: (roundUp(outDim), roundUp(rows)).
    public static void matmulTiled(KernelContext context, FloatArray x, FloatArray w, FloatArray out,
                                   int rows, int in, int outDim) {
        int lo = context.localIdx;
        int lr = context.localIdy;
        int o = context.groupIdx * TILE + lo;
        int r = context.groupIdy * TILE + lr;
        int tileRow = context.groupIdx * TILE + lr;
        float[] xTile = context.allocateFloatLocalArray(TILE * TILE);
        float[] wTile = context.allocateFloatLocalArray(TILE * TILE);
        float sum = 0f;
        for (int i0 = 0; i0 < in; i0 += TILE) {
            int i = i0 + lo;
            xTile[lr * TILE + lo] = r < rows && i < in ? x.get(r * in + i) : 0f;
            wTile[lr * TILE + lo] = tileRow < outDim && i < in ? w.get(tileRow * in + i) : 0f;
            context.localBarrier();
            for (int kk = 0; kk < TILE; kk++) {
                sum += xTile[lr * TILE + kk] * wTile[lo * TILE + kk];
            }
            context.localBarrier();
        }
        if (r < rows && o < outDim) {
            out.set(r * outDim + o, sum);
        }
    }

    // x[rows, heads * dh] in place: pair (2j, 2j+1) of each head rotated by the tabulated angle of pos[r]; cos/sin[pos, dh/2]
    public static void rope(FloatArray x, IntArray pos, FloatArray cos, FloatArray sin, int rows, int heads, int dh) {
        int half = dh / 2;
        for (@Parallel int idx = 0; idx < rows * heads * half; idx++) {
            int r = idx / (heads * half);
            int rest = idx % (heads * half);
            int h = rest / half;
            int j = rest % half;
            int at = (r * heads + h) * dh + 2 * j;
            float c = cos.get(pos.get(r) * half + j);
            float s = sin.get(pos.get(r) * half + j);
            float x0 = x.get(at);
            float x1 = x.get(at + 1);
            x.set(at, x0 * c - x1 * s);
            x.set(at + 1, x0 * s + x1 * c);
        }
    }

    // out[B, n, H * dh] = softmax(q k^T / sqrt(dh), keys j <= i) v, one thread per (sequence, head, query)
    public static void attention(FloatArray q, FloatArray k, FloatArray v, FloatArray out,
                                 int batch, int n, int nHeads, int nKvHeads, int dh) {
        for (@Parallel int idx = 0; idx < batch * nHeads * n; idx++) {
            int i = idx % n;
            int h = (idx / n) % nHeads;
            int b = idx / (n * nHeads);
            int g = h / (nHeads / nKvHeads);
            int qDim = nHeads * dh;
            int kvDim = nKvHeads * dh;
            int qi = (b * n + i) * qDim + h * dh;
            float scale = 1f / TornadoMath.sqrt((float) dh);
            float max = -3.0e38f;
            for (int j = 0; j <= i; j++) {
                int kj = (b * n + j) * kvDim + g * dh;
                float dot = 0f;
                for (int e = 0; e < dh; e++) {
                    dot += q.get(qi + e) * k.get(kj + e);
                }
                max = TornadoMath.max(max, dot * scale);
            }
            for (int e = 0; e < dh; e++) {
                out.set(qi + e, 0f);
            }
            float total = 0f;
            for (int j = 0; j <= i; j++) {
                int kj = (b * n + j) * kvDim + g * dh;
                float dot = 0f;
                for (int e = 0; e < dh; e++) {
                    dot += q.get(qi + e) * k.get(kj + e);
                }
                float p = TornadoMath.exp(dot * scale - max);
                total += p;
                for (int e = 0; e < dh; e++) {
                    out.set(qi + e, out.get(qi + e) + p * v.get(kj + e));
                }
            }
            for (int e = 0; e < dh; e++) {
                out.set(qi + e, out.get(qi + e) / total);
            }
        }
    }

    // out[len] = silu(gate[len]) * up[len]
    public static void swiglu(FloatArray gate, FloatArray up, FloatArray out, int len) {
        for (@Parallel int i = 0; i < len; i++) {
            float g = gate.get(i);
            out.set(i, g / (1f + TornadoMath.exp(-g)) * up.get(i));
        }
    }

    // out[len] = a[len] + b[len]
    public static void add(FloatArray a, FloatArray b, FloatArray out, int len) {
        for (@Parallel int i = 0; i < len; i++) {
            out.set(i, a.get(i) + b.get(i));
        }
    }

    // r[rows] = x[rows, d] . w[d]
    public static void routerLogits(FloatArray x, FloatArray w, FloatArray r, int rows, int d) {
        for (@Parallel int row = 0; row < rows; row++) {
            float sum = 0f;
            for (int i = 0; i < d; i++) {
                sum += x.get(row * d + i) * w.get(i);
            }
            r.set(row, sum);
        }
    }

    // rank[b, t] = how many tokens of sequence b come before t in (logit descending, position ascending) order
    public static void topKRank(FloatArray r, IntArray rank, int batch, int seqLen) {
        for (@Parallel int idx = 0; idx < batch * seqLen; idx++) {
            int b = idx / seqLen;
            int t = idx % seqLen;
            float rt = r.get(idx);
            int before = 0;
            for (int u = 0; u < seqLen; u++) {
                float ru = r.get(b * seqLen + u);
                if (ru > rt || (ru == rt && u < t)) {
                    before++;
                }
            }
            rank.set(idx, before);
        }
    }

    // sel[b, j] = position of the j-th selected token (rank < k) of sequence b, ascending
    public static void topKCompact(IntArray rank, IntArray sel, int batch, int seqLen, int k) {
        for (@Parallel int idx = 0; idx < batch * seqLen; idx++) {
            if (rank.get(idx) < k) {
                int b = idx / seqLen;
                int t = idx % seqLen;
                int earlier = 0;
                for (int u = 0; u < t; u++) {
                    if (rank.get(b * seqLen + u) < k) {
                        earlier++;
                    }
                }
                sel.set(b * k + earlier, t);
            }
        }
    }

    // xs[B, k, d] = x[b, sel[b, j], :]
    public static void gather(FloatArray x, IntArray sel, FloatArray xs, int batch, int seqLen, int k, int d) {
        for (@Parallel int idx = 0; idx < batch * k * d; idx++) {
            int row = idx / d;
            int b = row / k;
            xs.set(idx, x.get((b * seqLen + sel.get(row)) * d + idx % d));
        }
    }

    // x[b, sel[b, j], :] += g(r[b, sel[b, j]]) * f[b, j, :], g the identity (sigmoid = 0) or the sigmoid (sigmoid = 1)
    public static void scatter(FloatArray f, IntArray sel, FloatArray r, FloatArray x,
                               int batch, int seqLen, int k, int d, int sigmoid) {
        for (@Parallel int idx = 0; idx < batch * k * d; idx++) {
            int row = idx / d;
            int b = row / k;
            int target = b * seqLen + sel.get(row);
            float logit = r.get(target);
            float gain = sigmoid == 1 ? 1f / (1f + TornadoMath.exp(-logit)) : logit;
            int at = target * d + idx % d;
            x.set(at, x.get(at) + gain * f.get(idx));
        }
    }
}
