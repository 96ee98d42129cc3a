package dev.mod.tornado;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * The forward pass's row and routing kernels as TornadoVM compiles them to OpenCL C, PTX or SPIR-V: plain
 * static methods, one per operation, parallel over their outputs with @Parallel loops; RMSNorm (a work-group
 * reduction per row) on the KernelContext API with local memory. The projections are in {@link MatmulKernels},
 * attention in {@link AttentionKernels}. Shapes are in the comment above each; weights are [out, in].
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

    // out[rows, d] = RMSNorm(h) * w[d] with h = x[t, :] (+ extra[r, :] when add = 1) and t = (r / perSeq) * seqLen + map[r]
    // the row's place in the residual stream x[B * seqLen, d]: a routed layer reads its picked rows in place (no
    // gathered copy), and the MLP's norm adds the attention output here instead of storing the residual.
    // One work-group of ROW_GROUP items per row: each sums the squares of a strided slice, the group adds them up
    // in local memory, then scales. Grid: (rows * ROW_GROUP), local ROW_GROUP.
    // Rows r >= live[0] (past a causal chunk's rows or a routed layer's picked ones) are left alone.
    public static void rmsnorm(KernelContext context, FloatArray x, IntArray map, FloatArray extra, FloatArray w, FloatArray out,
                               IntArray live, int d, float eps, int seqLen, int perSeq, int add) {
        int r = context.groupIdx;
        int item = context.localIdx;
        // Past the live rows the group reads and stores nothing, but still reaches every barrier.
        int t = r < live.get(0) ? (r / perSeq) * seqLen + map.get(r) : 0;
        float[] partial = context.allocateFloatLocalArray(ROW_GROUP);
        float sumSquares = 0f;
        for (int i = item; i < d && r < live.get(0); i += ROW_GROUP) {
            float v = x.get(t * d + i);
            if (add == 1) {
                v += extra.get(r * d + i);
            }
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
        for (int i = item; i < d && r < live.get(0); i += ROW_GROUP) {
            float v = x.get(t * d + i);
            if (add == 1) {
                v += extra.get(r * d + i);
            }
            out.set(r * d + i, v * scale * w.get(i));
        }
    }

    // qkv[rows, (H + 2 Hkv) * dh] in place: the first `heads` = H + Hkv heads of each row (q, then k) rotated,
    // pair (2j, 2j+1) by the tabulated angle of position pos[r]; cos/sin[pos, dh/2]
    public static void rope(FloatArray qkv, IntArray pos, FloatArray cos, FloatArray sin, int rows, int heads, int stride, int dh) {
        int half = dh / 2;
        for (@Parallel int idx = 0; idx < rows * heads * half; idx++) {
            int r = idx / (heads * half);
            int rest = idx % (heads * half);
            int h = rest / half;
            int j = rest % half;
            int at = r * stride + h * dh + 2 * j;
            float c = cos.get(pos.get(r) * half + j);
            float s = sin.get(pos.get(r) * half + j);
            float x0 = qkv.get(at);
            float x1 = qkv.get(at + 1);
            qkv.set(at, x0 * c - x1 * s);
            qkv.set(at + 1, x0 * s + x1 * c);
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
                // Ranks are distinct for finite logits; a NaN would give several tokens one rank, and no
                // write may then land past the sequence's k slots.
                if (earlier < k) {
                    sel.set(b * k + earlier, t);
                }
            }
        }
    }
    // p[rows] = softmax(logits[r, :])[expert] over all `experts` (real and no-op) of each live row (r < live[0]): the
    // expert's probability
    public static void expertProbability(FloatArray logits, FloatArray p, IntArray live, int expert, int rows, int experts) {
        for (@Parallel int r = 0; r < rows; r++) {
            if (r < live.get(0)) {
                float max = logits.get(r * experts);
                for (int e = 1; e < experts; e++) {
                    max = TornadoMath.max(max, logits.get(r * experts + e));
                }
                float sum = 0f;
                for (int e = 0; e < experts; e++) {
                    sum += TornadoMath.exp(logits.get(r * experts + e) - max);
                }
                p.set(r, TornadoMath.exp(logits.get(r * experts + expert) - max) / sum);
            }
        }
    }

    // sel[taken[0]] = the live rows i < live[0] whose p[i] > threshold, ascending; taken[0] = how many: an expert's
    // causal rule. One item: a chunk's rows are few at decode, and the appends are in order.
    public static void thresholdRows(FloatArray p, IntArray live, IntArray sel, IntArray taken, float threshold) {
        int count = 0;
        for (int i = 0; i < live.get(0); i++) {
            if (p.get(i) > threshold) {
                sel.set(count, i);
                count++;
            }
        }
        taken.set(0, count);
    }

    // out[r, :] = x[(r / k) * n + sel[r], :] for the live rows r < live[0] of `rows`: the rows an expert took (k of each
    // sequence of n; n = 0: sel holds the rows themselves), gathered for its products
    public static void gatherRows(FloatArray x, IntArray sel, FloatArray out, IntArray live, int rows, int k, int n, int d) {
        for (@Parallel int idx = 0; idx < rows * d; idx++) {
            int r = idx / d;
            if (r < live.get(0)) {
                out.set(idx, x.get(((r / k) * n + sel.get(r)) * d + idx % d));
            }
        }
    }

    // a[size] = 0
    public static void zero(FloatArray a, int size) {
        for (@Parallel int i = 0; i < size; i++) {
            a.set(i, 0f);
        }
    }

    // x[t, :] += g * (attnOut[r, :] + f[r, :]) for the live rows r < live[0] of a layer's `rows`, t = (r / perSeq) * seqLen +
    // map[r] the row's place in the residual stream, g = 1 (gainMode 0), gains[t] (1) or sigmoid(gains[t]) (2): a
    // mixture of experts' residual, once its experts have added their weighted outputs into f
    public static void residual(FloatArray x, FloatArray attnOut, FloatArray f, IntArray map, FloatArray gains, IntArray live, int rows,
                                int d, int seqLen, int perSeq, int gainMode) {
        for (@Parallel int idx = 0; idx < rows * d; idx++) {
            int r = idx / d;
            if (r < live.get(0)) {
                int t = (r / perSeq) * seqLen + map.get(r);
                int at = t * d + idx % d;
                x.set(at, x.get(at) + gain(gains, t, gainMode) * (attnOut.get(idx) + f.get(idx)));
            }
        }
    }

    // The weight of row t's output in the residual stream: 1 (gainMode 0), gains[t] (1) or sigmoid(gains[t]) (2).
    // Called from kernels (TornadoVM inlines it).
    static float gain(FloatArray gains, int t, int gainMode) {
        float gain = 1f;
        if (gainMode == 1) {
            gain = gains.get(t);
        } else if (gainMode == 2) {
            gain = 1f / (1f + TornadoMath.exp(-gains.get(t)));
        }
        return gain;
    }
}
