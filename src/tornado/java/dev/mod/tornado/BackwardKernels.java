package dev.mod.tornado;

import dev.mod.train.AdamW;
import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * Training's kernels on the device, each forward kernel beside its backward twin (in the spirit of llm.c), as TornadoVM
 * compiles them to OpenCL C, PTX or SPIR-V: the loss, RMSNorm with its statistics and gradients, SwiGLU, the products
 * and their input and weight gradients (plain one-output-per-item kernels), the routed layer (gather, scatter with
 * g(r), the router's gradients, top-k targets, BCE), causal attention keeping its log-sum-exp and its backward, the
 * embedding's gradient, and the optimizer (the global norm, clipping, AdamW). RoPE is the forward's
 * {@link TornadoKernels#rope}, in place; its backward is the same kernel on the gradient with -sin.
 *
 * <p>No kernel adds into a value another work-item adds into: every sum is one item's loop in a fixed order, so a
 * run gives the same numbers every time (no atomics, whose order would vary). Shapes are in the comment above each;
 * R rows are B sequences of T tokens, weights are [out, in]. Compiled with debug information (see TornadoKernels).
 */
public final class BackwardKernels {
    private BackwardKernels() {
    }

    // losses[R] = -log softmax(logits[r])[targets[r]]; logits[R, V] become the probabilities
    public static void crossEntropy(FloatArray logits, IntArray targets, FloatArray losses, int rows, int vocab) {
        for (@Parallel int r = 0; r < rows; r++) {
            int o = r * vocab;
            float max = -3.0e38f;
            for (int v = 0; v < vocab; v++) {
                max = TornadoMath.max(max, logits.get(o + v));
            }
            float sum = 0f;
            for (int v = 0; v < vocab; v++) {
                float e = TornadoMath.exp(logits.get(o + v) - max);
                logits.set(o + v, e);
                sum += e;
            }
            float inverse = 1f / sum;
            for (int v = 0; v < vocab; v++) {
                logits.set(o + v, logits.get(o + v) * inverse);
            }
            losses.set(r, -TornadoMath.log(TornadoMath.max(logits.get(o + targets.get(r)), 1.17549435e-38f)));
        }
    }

    // dlogits[R, V] = (probs - onehot(targets)) * scale, in place of the probabilities
    public static void crossEntropyBackward(FloatArray probs, IntArray targets, int rows, int vocab, float scale) {
        for (@Parallel int idx = 0; idx < rows * vocab; idx++) {
            int r = idx / vocab;
            float p = probs.get(idx) * scale;
            probs.set(idx, idx % vocab == targets.get(r) ? p - scale : p);
        }
    }

    // losses[R] = BCE(sigmoid(z[r]), y[r]) (stable: log(1 + e^-|z|) + max(z, 0) - y z); dz[r] += weight (sigmoid(z) - y) / R
    public static void binaryCrossEntropy(FloatArray z, IntArray y, FloatArray dz, FloatArray losses, int rows, float weight) {
        for (@Parallel int r = 0; r < rows; r++) {
            float zr = z.get(r);
            float s = 1f / (1f + TornadoMath.exp(-zr));
            losses.set(r, TornadoMath.log(1f + TornadoMath.exp(-TornadoMath.abs(zr))) + TornadoMath.max(zr, 0f) - y.get(r) * zr);
            dz.set(r, dz.get(r) + weight * (s - y.get(r)) / rows);
        }
    }

    // rstd[R] = 1 / sqrt(mean(x[r]^2) + eps): what RMSNorm's gradients need of its forward
    public static void rmsnormRstd(FloatArray x, FloatArray rstd, int rows, int d, float eps) {
        for (@Parallel int r = 0; r < rows; r++) {
            float sumSquares = 0f;
            for (int i = 0; i < d; i++) {
                float v = x.get(r * d + i);
                sumSquares += v * v;
            }
            rstd.set(r, 1f / TornadoMath.sqrt(sumSquares / d + eps));
        }
    }

    // dx[R, d] += rstd * w * dout - x * rstd^3 / d * (dout . (w * x)), row by row: RMSNorm's input gradient
    public static void rmsnormBackward(FloatArray dx, FloatArray dout, FloatArray x, FloatArray w, FloatArray rstd, int rows, int d) {
        for (@Parallel int r = 0; r < rows; r++) {
            float s = rstd.get(r);
            float dot = 0f;
            for (int i = 0; i < d; i++) {
                dot += dout.get(r * d + i) * w.get(i) * x.get(r * d + i);
            }
            float coefficient = dot * s * s * s / d;
            for (int i = 0; i < d; i++) {
                int at = r * d + i;
                dx.set(at, dx.get(at) + dout.get(at) * w.get(i) * s - x.get(at) * coefficient);
            }
        }
    }

    // dw[d] += sum over rows of dout[r] * x[r] * rstd[r]: RMSNorm's weight gradient, one item per column
    public static void rmsnormWeightGrad(FloatArray dw, FloatArray dout, FloatArray x, FloatArray rstd, int rows, int d) {
        for (@Parallel int i = 0; i < d; i++) {
            float sum = 0f;
            for (int r = 0; r < rows; r++) {
                sum += dout.get(r * d + i) * x.get(r * d + i) * rstd.get(r);
            }
            dw.set(i, dw.get(i) + sum);
        }
    }

    // s[n] = silu(g) * u
    public static void swiglu(FloatArray g, FloatArray u, FloatArray s, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            float gi = g.get(i);
            s.set(i, gi / (1f + TornadoMath.exp(-gi)) * u.get(i));
        }
    }

    // dg[n] = ds * u * sig * (1 + g (1 - sig)), du[n] = ds * silu(g), sig = sigmoid(g)
    public static void swigluBackward(FloatArray ds, FloatArray g, FloatArray u, FloatArray dg, FloatArray du, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            float gi = g.get(i);
            float sig = 1f / (1f + TornadoMath.exp(-gi));
            float d = ds.get(i);
            dg.set(i, d * u.get(i) * sig * (1f + gi * (1f - sig)));
            du.set(i, d * gi * sig);
        }
    }

    // demb[V, d] += sum over the rows r with tokens[r] = v of dx[r, :]: one item per (v, column)
    public static void embedBackward(FloatArray demb, FloatArray dx, IntArray tokens, int rows, int vocab, int d) {
        for (@Parallel int idx = 0; idx < vocab * d; idx++) {
            int v = idx / d;
            int i = idx % d;
            float sum = 0f;
            for (int r = 0; r < rows; r++) {
                if (tokens.get(r) == v) {
                    sum += dx.get(r * d + i);
                }
            }
            demb.set(idx, demb.get(idx) + sum);
        }
    }

    // dx[b, sel[b, j], :] += dxs[b, j, :] (a sequence's picks are distinct: no two items write one value)
    public static void gatherBackward(FloatArray dx, FloatArray dxs, IntArray sel, int batch, int seqLen, int k, int d) {
        for (@Parallel int idx = 0; idx < batch * k * d; idx++) {
            int bj = idx / d;
            int i = idx % d;
            int b = bj / k;
            int at = (b * seqLen + sel.get(bj)) * d + i;
            dx.set(at, dx.get(at) + dxs.get(idx));
        }
    }

    // df[b, j, :] = g(r) * dx[b, sel, :] (written); dr[b, sel] += g'(r) * (f[b, j] . dx[b, sel]); g: r (sigmoid 0) or
    // sigmoid(r) (sigmoid 1)
    public static void scatterBackward(FloatArray df, FloatArray dr, FloatArray dx, FloatArray f, IntArray sel, FloatArray r,
                                       int batch, int seqLen, int k, int d, int sigmoid) {
        for (@Parallel int bj = 0; bj < batch * k; bj++) {
            int t = (bj / k) * seqLen + sel.get(bj);
            float rt = r.get(t);
            float s = 1f / (1f + TornadoMath.exp(-rt));
            float gain = sigmoid == 1 ? s : rt;
            float slope = sigmoid == 1 ? s * (1f - s) : 1f;
            float dot = 0f;
            for (int i = 0; i < d; i++) {
                float g = dx.get(t * d + i);
                df.set(bj * d + i, gain * g);
                dot += f.get(bj * d + i) * g;
            }
            dr.set(t, dr.get(t) + slope * dot);
        }
    }

    // dx[R, d] += dr[t] * w: the router's input gradient
    public static void routerBackwardInput(FloatArray dx, FloatArray dr, FloatArray w, int rows, int d) {
        for (@Parallel int idx = 0; idx < rows * d; idx++) {
            dx.set(idx, dx.get(idx) + dr.get(idx / d) * w.get(idx % d));
        }
    }

    // dw[d] += sum_t dr[t] * x[t, :]: the router's weight gradient, one item per column
    public static void routerBackwardWeight(FloatArray dw, FloatArray dr, FloatArray x, int rows, int d) {
        for (@Parallel int i = 0; i < d; i++) {
            float sum = 0f;
            for (int t = 0; t < rows; t++) {
                sum += dr.get(t) * x.get(t * d + i);
            }
            dw.set(i, dw.get(i) + sum);
        }
    }

    // out[B, n, H * dh] = causal softmax(q k^T / sqrt(dh)) v and lse[B, H, n] its log-sum-exp per row (for the
    // backward), q[B, n, H * dh], k and v [B, n, Hkv * dh]; one item per (sequence, head, query)
    public static void attention(FloatArray q, FloatArray k, FloatArray v, FloatArray out, FloatArray lse, int batch, int n,
                                 int heads, int kvHeads, int dh) {
        for (@Parallel int idx = 0; idx < batch * heads * n; idx++) {
            int i = idx % n;
            int h = (idx / n) % heads;
            int b = idx / (n * heads);
            int g = h / (heads / kvHeads);
            int qAt = (b * n + i) * heads * dh + h * dh;
            float scale = 1f / TornadoMath.sqrt((float) dh);
            float max = -3.0e38f;
            for (int j = 0; j <= i; j++) {
                float dot = 0f;
                for (int e = 0; e < dh; e++) {
                    dot += q.get(qAt + e) * k.get((b * n + j) * kvHeads * dh + g * dh + e);
                }
                max = TornadoMath.max(max, dot * scale);
            }
            float sum = 0f;
            for (int e = 0; e < dh; e++) {
                out.set(qAt + e, 0f);
            }
            for (int j = 0; j <= i; j++) {
                float dot = 0f;
                for (int e = 0; e < dh; e++) {
                    dot += q.get(qAt + e) * k.get((b * n + j) * kvHeads * dh + g * dh + e);
                }
                float p = TornadoMath.exp(dot * scale - max);
                sum += p;
                for (int e = 0; e < dh; e++) {
                    out.set(qAt + e, out.get(qAt + e) + p * v.get((b * n + j) * kvHeads * dh + g * dh + e));
                }
            }
            for (int e = 0; e < dh; e++) {
                out.set(qAt + e, out.get(qAt + e) / sum);
            }
            lse.set((b * heads + h) * n + i, max + TornadoMath.log(sum));
        }
    }

    // dq[B, n, H * dh] (written) from dout and the forward's q, k, v, out, lse: p_ij recomputed from lse, ds_ij =
    // p_ij (dout_i . v_j - dout_i . out_i); dq_i = sum_j ds_ij k_j / sqrt(dh). One item per (sequence, head, query)
    public static void attentionBackwardQuery(FloatArray dq, FloatArray dout, FloatArray q, FloatArray k, FloatArray v,
                                              FloatArray out, FloatArray lse, int batch, int n, int heads, int kvHeads, int dh) {
        for (@Parallel int idx = 0; idx < batch * heads * n; idx++) {
            int i = idx % n;
            int h = (idx / n) % heads;
            int b = idx / (n * heads);
            int g = h / (heads / kvHeads);
            int qAt = (b * n + i) * heads * dh + h * dh;
            float scale = 1f / TornadoMath.sqrt((float) dh);
            float rowLse = lse.get((b * heads + h) * n + i);
            float delta = 0f;
            for (int e = 0; e < dh; e++) {
                delta += dout.get(qAt + e) * out.get(qAt + e);
                dq.set(qAt + e, 0f);
            }
            for (int j = 0; j <= i; j++) {
                int kvAt = (b * n + j) * kvHeads * dh + g * dh;
                float dot = 0f;
                float dp = 0f;
                for (int e = 0; e < dh; e++) {
                    dot += q.get(qAt + e) * k.get(kvAt + e);
                    dp += dout.get(qAt + e) * v.get(kvAt + e);
                }
                float ds = TornadoMath.exp(dot * scale - rowLse) * (dp - delta) * scale;
                for (int e = 0; e < dh; e++) {
                    dq.set(qAt + e, dq.get(qAt + e) + ds * k.get(kvAt + e));
                }
            }
        }
    }

    // dk, dv [B, n, Hkv * dh] (written): for key j of kv head g, over the query heads of g and the queries i >= j,
    // dv_j = sum p_ij dout_i, dk_j = sum ds_ij q_i / sqrt(dh). One item per (sequence, kv head, key)
    public static void attentionBackwardKeyValue(FloatArray dk, FloatArray dv, FloatArray dout, FloatArray q, FloatArray k,
                                                 FloatArray v, FloatArray out, FloatArray lse, int batch, int n, int heads,
                                                 int kvHeads, int dh) {
        for (@Parallel int idx = 0; idx < batch * kvHeads * n; idx++) {
            int j = idx % n;
            int g = (idx / n) % kvHeads;
            int b = idx / (n * kvHeads);
            int kvAt = (b * n + j) * kvHeads * dh + g * dh;
            int group = heads / kvHeads;
            float scale = 1f / TornadoMath.sqrt((float) dh);
            for (int e = 0; e < dh; e++) {
                dk.set(kvAt + e, 0f);
                dv.set(kvAt + e, 0f);
            }
            for (int h = g * group; h < (g + 1) * group; h++) {
                for (int i = j; i < n; i++) {
                    int qAt = (b * n + i) * heads * dh + h * dh;
                    float dot = 0f;
                    float dp = 0f;
                    float delta = 0f;
                    for (int e = 0; e < dh; e++) {
                        dot += q.get(qAt + e) * k.get(kvAt + e);
                        dp += dout.get(qAt + e) * v.get(kvAt + e);
                        delta += dout.get(qAt + e) * out.get(qAt + e);
                    }
                    float p = TornadoMath.exp(dot * scale - lse.get((b * heads + h) * n + i));
                    float ds = p * (dp - delta) * scale;
                    for (int e = 0; e < dh; e++) {
                        dv.set(kvAt + e, dv.get(kvAt + e) + p * dout.get(qAt + e));
                        dk.set(kvAt + e, dk.get(kvAt + e) + ds * q.get(qAt + e));
                    }
                }
            }
        }
    }

    // out[n] = in[n]
    public static void copy(FloatArray in, FloatArray out, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            out.set(i, in.get(i));
        }
    }

    // a[n] = 0
    public static void zero(FloatArray a, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            a.set(i, 0f);
        }
    }

    // out[n] = a[n] + b[n]; out may be a
    public static void add(FloatArray a, FloatArray b, FloatArray out, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            out.set(i, a.get(i) + b.get(i));
        }
    }

    // out[R, d] = x * rstd[r] * w: RMSNorm, its statistics from rmsnormRstd
    public static void rmsnorm(FloatArray x, FloatArray rstd, FloatArray w, FloatArray out, int rows, int d) {
        for (@Parallel int idx = 0; idx < rows * d; idx++) {
            out.set(idx, x.get(idx) * rstd.get(idx / d) * w.get(idx % d));
        }
    }

    // out[R, O] = x[R, I] . w[O, I]^T, one item per output in a fixed order
    public static void matmul(FloatArray x, FloatArray w, FloatArray out, int rows, int in, int outDim) {
        for (@Parallel int idx = 0; idx < rows * outDim; idx++) {
            int r = idx / outDim;
            int o = idx % outDim;
            float sum = 0f;
            for (int i = 0; i < in; i++) {
                sum += x.get(r * in + i) * w.get(o * in + i);
            }
            out.set(idx, sum);
        }
    }

    // dx[R, I] = dout[R, O] . w[O, I] (add 1: +=)
    public static void matmulBackwardInput(FloatArray dout, FloatArray w, FloatArray dx, int rows, int in,
                                           int outDim, int add) {
        for (@Parallel int idx = 0; idx < rows * in; idx++) {
            int r = idx / in;
            int i = idx % in;
            float sum = 0f;
            for (int o = 0; o < outDim; o++) {
                sum += dout.get(r * outDim + o) * w.get(o * in + i);
            }
            dx.set(idx, add == 1 ? dx.get(idx) + sum : sum);
        }
    }

    // dw[O, I] = dout[R, O]^T . x[R, I] (written)
    public static void matmulBackwardWeight(FloatArray dout, FloatArray x, FloatArray dw, int rows, int in,
                                            int outDim) {
        for (@Parallel int idx = 0; idx < outDim * in; idx++) {
            int o = idx / in;
            int i = idx % in;
            float sum = 0f;
            for (int r = 0; r < rows; r++) {
                sum += dout.get(r * outDim + o) * x.get(r * in + i);
            }
            dw.set(idx, sum);
        }
    }

    // xs[B, k, d] = x[b, sel[b, j], :]
    public static void gather(FloatArray x, IntArray sel, FloatArray xs, int batch, int seqLen, int k, int d) {
        for (@Parallel int idx = 0; idx < batch * k * d; idx++) {
            int bj = idx / d;
            xs.set(idx, x.get(((bj / k) * seqLen + sel.get(bj)) * d + idx % d));
        }
    }

    // x[b, sel[b, j], :] += g(r) * f[b, j, :]; g: r (sigmoid 0) or sigmoid(r) (sigmoid 1)
    public static void scatter(FloatArray x, FloatArray f, IntArray sel, FloatArray r, int batch, int seqLen,
                               int k, int d, int sigmoid) {
        for (@Parallel int idx = 0; idx < batch * k * d; idx++) {
            int bj = idx / d;
            int t = (bj / k) * seqLen + sel.get(bj);
            float rt = r.get(t);
            float gain = sigmoid == 1 ? 1f / (1f + TornadoMath.exp(-rt)) : rt;
            int at = t * d + idx % d;
            x.set(at, x.get(at) + gain * f.get(idx));
        }
    }

    // target[B, T] = 1 where sel picked the position, else 0
    public static void topKTargets(IntArray sel, IntArray target, int batch, int seqLen, int k) {
        for (@Parallel int idx = 0; idx < batch * seqLen; idx++) {
            int b = idx / seqLen;
            int picked = 0;
            for (int j = 0; j < k; j++) {
                if (sel.get(b * k + j) == idx % seqLen) {
                    picked = 1;
                }
            }
            target.set(idx, picked);
        }
    }

    // out[at] = mean of values[n], in order (a loss)
    public static void mean(FloatArray values, FloatArray out, int n, int at) {
        for (@Parallel int one = 0; one < 1; one++) {
            float sum = 0f;
            for (int i = 0; i < n; i++) {
                sum += values.get(i);
            }
            out.set(at + one, sum / n);
        }
    }

    /** Elements per partial sum of squares: the global norm adds the partials in one fixed order. */
    public static final int NORM_BLOCK = 1024;

    // partial[offset + b] = sum of g^2 over block b of g[n] (blocks of NORM_BLOCK)
    public static void sumSquares(FloatArray g, FloatArray partial, int n, int offset) {
        for (@Parallel int block = 0; block < (n + NORM_BLOCK - 1) / NORM_BLOCK; block++) {
            float sum = 0f;
            int end = TornadoMath.min(n, (block + 1) * NORM_BLOCK);
            for (int i = block * NORM_BLOCK; i < end; i++) {
                sum += g.get(i) * g.get(i);
            }
            partial.set(offset + block, sum);
        }
    }

    // norm[0] = sqrt(sum of partial[count]) in order, the global norm; norm[1] = the factor that clips it to
    // hyper[MAX_NORM] (1 when below, or when that is 0: no clipping)
    public static void clipFactor(FloatArray partial, FloatArray hyper, FloatArray norm, int count) {
        for (@Parallel int one = 0; one < 1; one++) {
            float sum = 0f;
            for (int i = 0; i < count; i++) {
                sum += partial.get(i);
            }
            float total = TornadoMath.sqrt(sum);
            float most = hyper.get(MAX_NORM);
            norm.set(one, total);
            norm.set(one + 1, most > 0f && total > most ? most / total : 1f);
        }
    }

    // g[n] *= norm[1] (clipping to the global norm)
    public static void scale(FloatArray g, FloatArray norm, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            g.set(i, g.get(i) * norm.get(1));
        }
    }

    /** Where the step's settings sit in the hyper array: learning rate, the two bias corrections, the clipping norm. */
    public static final int LR = 0;
    public static final int BIAS1 = 1;
    public static final int BIAS2 = 2;
    public static final int MAX_NORM = 3;

    // AdamW on p[n] with gradient g: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, p -= lr (m / c1 / (sqrt(v / c2) + eps)
    // + decay p); lr, c1 = 1 - b1^step and c2 = 1 - b2^step from hyper
    public static void adamW(FloatArray p, FloatArray g, FloatArray m, FloatArray v, FloatArray hyper, int n,
                             float decay) {
        for (@Parallel int i = 0; i < n; i++) {
            float beta1 = (float) AdamW.BETA1;
            float beta2 = (float) AdamW.BETA2;
            float gi = g.get(i);
            float mi = beta1 * m.get(i) + (1f - beta1) * gi;
            float vi = beta2 * v.get(i) + (1f - beta2) * gi * gi;
            m.set(i, mi);
            v.set(i, vi);
            float update = mi / hyper.get(BIAS1) / (TornadoMath.sqrt(vi / hyper.get(BIAS2)) + (float) AdamW.EPS) + decay * p.get(i);
            p.set(i, p.get(i) - hyper.get(LR) * update);
        }
    }
}
