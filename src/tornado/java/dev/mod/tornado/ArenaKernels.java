package dev.mod.tornado;

import dev.mod.train.AdamW;
import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

/**
 * Training's kernels on the device, each forward kernel beside its backward twin (in the spirit of llm.c), as TornadoVM
 * compiles them to OpenCL C, PTX or SPIR-V. Every kernel works in one arena `a` holding the whole run (weights,
 * gradients, AdamW's moments, activations, scratch), its arrays named by their offsets: TornadoVM hands buffers
 * from a graph only to the graph that runs next, and one buffer that every graph uses goes everywhere
 * (TornadoTrainingKernels). Integer arrays (tokens, targets, positions, selections) are stored as floats, exact below
 * 2^24. A step's few host values (the learning rate, a draw) come in `in`, a graph's own input moved on every run.
 *
 * <p>No kernel adds into a value another work-item adds into: every sum is one item's loop in a fixed order, so a
 * run gives the same numbers every time (no atomics, whose order would vary). Shapes are in the comment above each;
 * R rows are B sequences of T tokens, weights are [out, in]. Compiled with debug information (see TornadoKernels).
 */
public final class ArenaKernels {
    private ArenaKernels() {
    }

    // x[n] = in[from + n]: a host input (tokens) into the arena
    public static void copyIn(FloatArray a, FloatArray in, int x, int from, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            a.set(x + i, in.get(from + i));
        }
    }

    // x[R, d] = emb[tok[r], :]
    public static void embed(FloatArray a, int x, int tok, int emb, int rows, int d) {
        for (@Parallel int idx = 0; idx < rows * d; idx++) {
            int r = idx / d;
            a.set(x + idx, a.get(emb + (int) a.get(tok + r) * d + idx % d));
        }
    }

    // demb[V, d] += sum over the rows r with tok[r] = v of dx[r, :]: one item per (v, column)
    public static void embedBackward(FloatArray a, int demb, int dx, int tok, int rows, int vocab, int d) {
        for (@Parallel int idx = 0; idx < vocab * d; idx++) {
            int v = idx / d;
            int i = idx % d;
            float sum = 0f;
            for (int r = 0; r < rows; r++) {
                if ((int) a.get(tok + r) == v) {
                    sum += a.get(dx + r * d + i);
                }
            }
            a.set(demb + idx, a.get(demb + idx) + sum);
        }
    }

    // rstd[R] = 1 / sqrt(mean(x[r]^2) + eps): RMSNorm's statistics, for its forward and its gradients
    public static void rmsnormRstd(FloatArray a, int x, int rstd, int rows, int d, float eps) {
        for (@Parallel int r = 0; r < rows; r++) {
            float sumSquares = 0f;
            for (int i = 0; i < d; i++) {
                float v = a.get(x + r * d + i);
                sumSquares += v * v;
            }
            a.set(rstd + r, 1f / TornadoMath.sqrt(sumSquares / d + eps));
        }
    }

    // out[R, d] = x * rstd[r] * w
    public static void rmsnorm(FloatArray a, int x, int rstd, int w, int out, int rows, int d) {
        for (@Parallel int idx = 0; idx < rows * d; idx++) {
            a.set(out + idx, a.get(x + idx) * a.get(rstd + idx / d) * a.get(w + idx % d));
        }
    }

    // dx[R, d] += rstd * w * dout - x * rstd^3 / d * (dout . (w * x)), row by row: RMSNorm's input gradient
    public static void rmsnormBackward(FloatArray a, int dx, int dout, int x, int w, int rstd, int rows, int d) {
        for (@Parallel int r = 0; r < rows; r++) {
            float s = a.get(rstd + r);
            float dot = 0f;
            for (int i = 0; i < d; i++) {
                dot += a.get(dout + r * d + i) * a.get(w + i) * a.get(x + r * d + i);
            }
            float coefficient = dot * s * s * s / d;
            for (int i = 0; i < d; i++) {
                int at = r * d + i;
                a.set(dx + at, a.get(dx + at) + a.get(dout + at) * a.get(w + i) * s - a.get(x + at) * coefficient);
            }
        }
    }

    // dw[d] += sum over rows of dout[r] * x[r] * rstd[r]: RMSNorm's weight gradient, one item per column
    public static void rmsnormWeightGrad(FloatArray a, int dw, int dout, int x, int rstd, int rows, int d) {
        for (@Parallel int i = 0; i < d; i++) {
            float sum = 0f;
            for (int r = 0; r < rows; r++) {
                sum += a.get(dout + r * d + i) * a.get(x + r * d + i) * a.get(rstd + r);
            }
            a.set(dw + i, a.get(dw + i) + sum);
        }
    }

    // x[n, heads * dh] rotated in place, pair (2j, 2j+1) of each head by the angle of position pos[r]; cos, sin [T, dh / 2]
    // (-sin rotates back: RoPE's backward)
    public static void rope(FloatArray a, int x, int pos, int cos, int sin, int n, int heads, int dh) {
        int half = dh / 2;
        for (@Parallel int idx = 0; idx < n * heads * half; idx++) {
            int j = idx % half;
            int rh = idx / half;
            int r = rh / heads;
            int table = (int) a.get(pos + r) * half + j;
            float c = a.get(cos + table);
            float s = a.get(sin + table);
            int at = x + rh * dh + 2 * j;
            float x0 = a.get(at);
            float x1 = a.get(at + 1);
            a.set(at, x0 * c - x1 * s);
            a.set(at + 1, x0 * s + x1 * c);
        }
    }

    // out[n] = x[n] + y[n]; out may be x
    public static void add(FloatArray a, int x, int y, int out, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            a.set(out + i, a.get(x + i) + a.get(y + i));
        }
    }

    // x[n] = 0
    public static void zero(FloatArray a, int x, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            a.set(x + i, 0f);
        }
    }

    // dst[n] = src[n]
    public static void copy(FloatArray a, int src, int dst, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            a.set(dst + i, a.get(src + i));
        }
    }

    // out[B, n, H * dh] = causal softmax(q k^T / sqrt(dh)) v and lse[B, H, n] its log-sum-exp per row (for the
    // backward), q[B, n, H * dh], k and v [B, n, Hkv * dh]; one item per (sequence, head, query)
    public static void attention(FloatArray a, int q, int k, int v, int out, int lse, int batch, int n, int heads, int kvHeads,
                                 int dh) {
        for (@Parallel int idx = 0; idx < batch * heads * n; idx++) {
            int i = idx % n;
            int h = (idx / n) % heads;
            int b = idx / (n * heads);
            int g = h / (heads / kvHeads);
            int qAt = (b * n + i) * heads * dh + h * dh;
            float scale = 1f / TornadoMath.sqrt((float) dh);
            float max = -3.0e38f;
            for (int j = 0; j <= i; j++) {
                int kvAt = (b * n + j) * kvHeads * dh + g * dh;
                float dot = 0f;
                for (int e = 0; e < dh; e++) {
                    dot += a.get(q + qAt + e) * a.get(k + kvAt + e);
                }
                max = TornadoMath.max(max, dot * scale);
            }
            float sum = 0f;
            for (int e = 0; e < dh; e++) {
                a.set(out + qAt + e, 0f);
            }
            for (int j = 0; j <= i; j++) {
                int kvAt = (b * n + j) * kvHeads * dh + g * dh;
                float dot = 0f;
                for (int e = 0; e < dh; e++) {
                    dot += a.get(q + qAt + e) * a.get(k + kvAt + e);
                }
                float p = TornadoMath.exp(dot * scale - max);
                sum += p;
                for (int e = 0; e < dh; e++) {
                    a.set(out + qAt + e, a.get(out + qAt + e) + p * a.get(v + kvAt + e));
                }
            }
            for (int e = 0; e < dh; e++) {
                a.set(out + qAt + e, a.get(out + qAt + e) / sum);
            }
            a.set(lse + (b * heads + h) * n + i, max + TornadoMath.log(sum));
        }
    }

    // dq[B, n, H * dh] (written) from dout and the forward's q, k, v, out, lse: p_ij recomputed from lse, ds_ij =
    // p_ij (dout_i . v_j - dout_i . out_i); dq_i = sum_j ds_ij k_j / sqrt(dh). One item per (sequence, head, query)
    public static void attentionBackwardQuery(FloatArray a, int dq, int dout, int q, int k, int v, int out, int lse, int batch,
                                              int n, int heads, int kvHeads, int dh) {
        for (@Parallel int idx = 0; idx < batch * heads * n; idx++) {
            int i = idx % n;
            int h = (idx / n) % heads;
            int b = idx / (n * heads);
            int g = h / (heads / kvHeads);
            int qAt = (b * n + i) * heads * dh + h * dh;
            float scale = 1f / TornadoMath.sqrt((float) dh);
            float rowLse = a.get(lse + (b * heads + h) * n + i);
            float delta = 0f;
            for (int e = 0; e < dh; e++) {
                delta += a.get(dout + qAt + e) * a.get(out + qAt + e);
                a.set(dq + qAt + e, 0f);
            }
            for (int j = 0; j <= i; j++) {
                int kvAt = (b * n + j) * kvHeads * dh + g * dh;
                float dot = 0f;
                float dp = 0f;
                for (int e = 0; e < dh; e++) {
                    dot += a.get(q + qAt + e) * a.get(k + kvAt + e);
                    dp += a.get(dout + qAt + e) * a.get(v + kvAt + e);
                }
                float ds = TornadoMath.exp(dot * scale - rowLse) * (dp - delta) * scale;
                for (int e = 0; e < dh; e++) {
                    a.set(dq + qAt + e, a.get(dq + qAt + e) + ds * a.get(k + kvAt + e));
                }
            }
        }
    }

    // dk, dv [B, n, Hkv * dh] (written): for key j of kv head g, over the query heads of g and the queries i >= j,
    // dv_j = sum p_ij dout_i, dk_j = sum ds_ij q_i / sqrt(dh). One item per (sequence, kv head, key)
    public static void attentionBackwardKeyValue(FloatArray a, int dk, int dv, int dout, int q, int k, int v, int out, int lse,
                                                 int batch, int n, int heads, int kvHeads, int dh) {
        for (@Parallel int idx = 0; idx < batch * kvHeads * n; idx++) {
            int j = idx % n;
            int g = (idx / n) % kvHeads;
            int b = idx / (n * kvHeads);
            int kvAt = (b * n + j) * kvHeads * dh + g * dh;
            int group = heads / kvHeads;
            float scale = 1f / TornadoMath.sqrt((float) dh);
            for (int e = 0; e < dh; e++) {
                a.set(dk + kvAt + e, 0f);
                a.set(dv + kvAt + e, 0f);
            }
            for (int h = g * group; h < (g + 1) * group; h++) {
                for (int i = j; i < n; i++) {
                    int qAt = (b * n + i) * heads * dh + h * dh;
                    float dot = 0f;
                    float dp = 0f;
                    float delta = 0f;
                    for (int e = 0; e < dh; e++) {
                        dot += a.get(q + qAt + e) * a.get(k + kvAt + e);
                        dp += a.get(dout + qAt + e) * a.get(v + kvAt + e);
                        delta += a.get(dout + qAt + e) * a.get(out + qAt + e);
                    }
                    float p = TornadoMath.exp(dot * scale - a.get(lse + (b * heads + h) * n + i));
                    float ds = p * (dp - delta) * scale;
                    for (int e = 0; e < dh; e++) {
                        a.set(dv + kvAt + e, a.get(dv + kvAt + e) + p * a.get(dout + qAt + e));
                        a.set(dk + kvAt + e, a.get(dk + kvAt + e) + ds * a.get(q + qAt + e));
                    }
                }
            }
        }
    }

    // s[n] = silu(g) * u
    public static void swiglu(FloatArray a, int g, int u, int s, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            float gi = a.get(g + i);
            a.set(s + i, gi / (1f + TornadoMath.exp(-gi)) * a.get(u + i));
        }
    }

    // dg[n] = ds * u * sig * (1 + g (1 - sig)), du[n] = ds * silu(g), sig = sigmoid(g)
    public static void swigluBackward(FloatArray a, int ds, int g, int u, int dg, int du, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            float gi = a.get(g + i);
            float sig = 1f / (1f + TornadoMath.exp(-gi));
            float d = a.get(ds + i);
            a.set(dg + i, d * a.get(u + i) * sig * (1f + gi * (1f - sig)));
            a.set(du + i, d * gi * sig);
        }
    }

    // r[R] = x[R, d] . w[d]
    public static void routerLogits(FloatArray a, int x, int w, int r, int rows, int d) {
        for (@Parallel int t = 0; t < rows; t++) {
            float sum = 0f;
            for (int i = 0; i < d; i++) {
                sum += a.get(x + t * d + i) * a.get(w + i);
            }
            a.set(r + t, sum);
        }
    }

    // dx[R, d] += dr[t] * w: the router's input gradient
    public static void routerBackwardInput(FloatArray a, int dx, int dr, int w, int rows, int d) {
        for (@Parallel int idx = 0; idx < rows * d; idx++) {
            a.set(dx + idx, a.get(dx + idx) + a.get(dr + idx / d) * a.get(w + idx % d));
        }
    }

    // dw[d] += sum_t dr[t] * x[t, :]: the router's weight gradient, one item per column
    public static void routerBackwardWeight(FloatArray a, int dw, int dr, int x, int rows, int d) {
        for (@Parallel int i = 0; i < d; i++) {
            float sum = 0f;
            for (int t = 0; t < rows; t++) {
                sum += a.get(dr + t) * a.get(x + t * d + i);
            }
            a.set(dw + i, a.get(dw + i) + sum);
        }
    }

    // noise[R] = Rng.uniform(draw, layer, t), the draw's 64 bits in four 16-bit pieces at in[at]
    public static void uniformScores(FloatArray a, FloatArray in, int at, int noise, int layer, int rows) {
        for (@Parallel int t = 0; t < rows; t++) {
            long draw = (long) in.get(at) | ((long) in.get(at + 1) << 16) | ((long) in.get(at + 2) << 32)
                    | ((long) in.get(at + 3) << 48);
            a.set(noise + t, uniformBits(draw, layer, t) / 16777216f);
        }
    }

    // noise[R] = Rng.gaussian(draw, layer, t): 12 uniform numbers' 24 bits summed as integers, less 6, converted once
    public static void gaussianScores(FloatArray a, FloatArray in, int at, int noise, int layer, int rows) {
        for (@Parallel int t = 0; t < rows; t++) {
            long draw = (long) in.get(at) | ((long) in.get(at + 1) << 16) | ((long) in.get(at + 2) << 32)
                    | ((long) in.get(at + 3) << 48);
            int sum = 0;
            for (int m = 0; m < 12; m++) {
                sum += uniformBits(draw, layer, 12 * t + m);
            }
            a.set(noise + t, (sum - 6 * 16777216) / 16777216f);
        }
    }

    // the 24 bits of Rng.uniform(draw, layer, i): SplitMix64's mix with each >>> written as >> and a mask, since
    // TornadoVM 5.2.1 emits >>> on a long as OpenCL's arithmetic shift
    private static int uniformBits(long draw, int layer, int i) {
        long z = draw * 0x9E3779B97F4A7C15L + layer + (i + 1) * 0x9E3779B97F4A7C15L;
        z = (z ^ ((z >> 30) & 0x3FFFFFFFFL)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ ((z >> 27) & 0x1FFFFFFFFFL)) * 0x94D049BB133111EBL;
        z = z ^ ((z >> 31) & 0x1FFFFFFFFL);
        return (int) ((z >> 40) & 0xFFFFFFL);
    }

    // rank[b, t] = how many tokens of sequence b come before t in (score descending, position ascending) order
    public static void topKRank(FloatArray a, int r, int rank, int batch, int seqLen) {
        for (@Parallel int idx = 0; idx < batch * seqLen; idx++) {
            int b = idx / seqLen;
            int t = idx % seqLen;
            float rt = a.get(r + idx);
            int before = 0;
            for (int u = 0; u < seqLen; u++) {
                float ru = a.get(r + b * seqLen + u);
                if (ru > rt || (ru == rt && u < t)) {
                    before++;
                }
            }
            a.set(rank + idx, before);
        }
    }

    // sel[b, j] = position of the j-th selected token (rank < k) of sequence b, ascending
    public static void topKCompact(FloatArray a, int rank, int sel, int batch, int seqLen, int k) {
        for (@Parallel int idx = 0; idx < batch * seqLen; idx++) {
            if (a.get(rank + idx) < k) {
                int b = idx / seqLen;
                int t = idx % seqLen;
                int earlier = 0;
                for (int u = 0; u < t; u++) {
                    if (a.get(rank + b * seqLen + u) < k) {
                        earlier++;
                    }
                }
                // Ranks are distinct for finite scores; a NaN would give several tokens one rank, and no
                // write may then land past the sequence's k slots.
                if (earlier < k) {
                    a.set(sel + b * k + earlier, t);
                }
            }
        }
    }

    // target[B, T] = 1 where sel picked the position, else 0
    public static void topKTargets(FloatArray a, int sel, int target, int batch, int seqLen, int k) {
        for (@Parallel int idx = 0; idx < batch * seqLen; idx++) {
            int b = idx / seqLen;
            float picked = 0f;
            for (int j = 0; j < k; j++) {
                if ((int) a.get(sel + b * k + j) == idx % seqLen) {
                    picked = 1f;
                }
            }
            a.set(target + idx, picked);
        }
    }

    // xs[B, k, d] = x[b, sel[b, j], :]
    public static void gather(FloatArray a, int x, int sel, int xs, int batch, int seqLen, int k, int d) {
        for (@Parallel int idx = 0; idx < batch * k * d; idx++) {
            int bj = idx / d;
            a.set(xs + idx, a.get(x + ((bj / k) * seqLen + (int) a.get(sel + bj)) * d + idx % d));
        }
    }

    // dx[b, sel[b, j], :] += dxs[b, j, :] (a sequence's picks are distinct: no two items write one value)
    public static void gatherBackward(FloatArray a, int dx, int dxs, int sel, int batch, int seqLen, int k, int d) {
        for (@Parallel int idx = 0; idx < batch * k * d; idx++) {
            int bj = idx / d;
            int at = dx + ((bj / k) * seqLen + (int) a.get(sel + bj)) * d + idx % d;
            a.set(at, a.get(at) + a.get(dxs + idx));
        }
    }

    // x[b, sel[b, j], :] += g(r) * f[b, j, :]; g: r (sigmoid 0) or sigmoid(r) (sigmoid 1)
    public static void scatter(FloatArray a, int x, int f, int sel, int r, int batch, int seqLen, int k, int d, int sigmoid) {
        for (@Parallel int idx = 0; idx < batch * k * d; idx++) {
            int bj = idx / d;
            int t = (bj / k) * seqLen + (int) a.get(sel + bj);
            float rt = a.get(r + t);
            float gain = sigmoid == 1 ? 1f / (1f + TornadoMath.exp(-rt)) : rt;
            int at = x + t * d + idx % d;
            a.set(at, a.get(at) + gain * a.get(f + idx));
        }
    }

    // df[b, j, :] = g(r) * dx[b, sel, :] (written); dr[b, sel] += g'(r) * (f[b, j] . dx[b, sel])
    public static void scatterBackward(FloatArray a, int df, int dr, int dx, int f, int sel, int r, int batch, int seqLen, int k,
                                       int d, int sigmoid) {
        for (@Parallel int bj = 0; bj < batch * k; bj++) {
            int t = (bj / k) * seqLen + (int) a.get(sel + bj);
            float rt = a.get(r + t);
            float s = 1f / (1f + TornadoMath.exp(-rt));
            float gain = sigmoid == 1 ? s : rt;
            float slope = sigmoid == 1 ? s * (1f - s) : 1f;
            float dot = 0f;
            for (int i = 0; i < d; i++) {
                float g = a.get(dx + t * d + i);
                a.set(df + bj * d + i, gain * g);
                dot += a.get(f + bj * d + i) * g;
            }
            a.set(dr + t, a.get(dr + t) + slope * dot);
        }
    }

    // p[rows] = softmax over the E experts of logits[rows, E], its column e
    public static void expertProbabilities(FloatArray a, int p, int logits, int expert, int rows, int experts) {
        for (@Parallel int r = 0; r < rows; r++) {
            int base = logits + r * experts;
            float max = rowMax(a, base, experts);
            a.set(p + r, TornadoMath.exp(a.get(base + expert) - max) / rowSumExp(a, base, experts, max));
        }
    }

    // dlogits[rows, E] += dp[r] * p_e * (delta_ej - p_j): the softmax's gradient from column e's dp[rows]
    public static void expertProbabilitiesBackward(FloatArray a, int dlogits, int dp, int logits, int expert, int rows, int experts) {
        for (@Parallel int r = 0; r < rows; r++) {
            int base = logits + r * experts;
            float max = rowMax(a, base, experts);
            float sum = rowSumExp(a, base, experts, max);
            float g = a.get(dp + r) * TornadoMath.exp(a.get(base + expert) - max) / sum;
            for (int j = 0; j < experts; j++) {
                float pj = TornadoMath.exp(a.get(base + j) - max) / sum;
                int at = dlogits + r * experts + j;
                a.set(at, a.get(at) + g * ((j == expert ? 1f : 0f) - pj));
            }
        }
    }

    // the largest of a[from .. from + len)
    private static float rowMax(FloatArray a, int from, int len) {
        float max = -3.0e38f;
        for (int i = from; i < from + len; i++) {
            max = TornadoMath.max(max, a.get(i));
        }
        return max;
    }

    // the sum of exp(a[i] - max) over a[from .. from + len)
    private static float rowSumExp(FloatArray a, int from, int len, float max) {
        float sum = 0f;
        for (int i = from; i < from + len; i++) {
            sum += TornadoMath.exp(a.get(i) - max);
        }
        return sum;
    }

    // rowLoss[R] = -log softmax(logits[r])[targets[r]]; logits[R, V] become the probabilities
    public static void crossEntropy(FloatArray a, int logits, int targets, int rowLoss, int rows, int vocab) {
        for (@Parallel int r = 0; r < rows; r++) {
            int o = logits + r * vocab;
            float max = -3.0e38f;
            for (int v = 0; v < vocab; v++) {
                max = TornadoMath.max(max, a.get(o + v));
            }
            float sum = 0f;
            for (int v = 0; v < vocab; v++) {
                float e = TornadoMath.exp(a.get(o + v) - max);
                a.set(o + v, e);
                sum += e;
            }
            float inverse = 1f / sum;
            for (int v = 0; v < vocab; v++) {
                a.set(o + v, a.get(o + v) * inverse);
            }
            a.set(rowLoss + r, -TornadoMath.log(TornadoMath.max(a.get(o + (int) a.get(targets + r)), 1.17549435e-38f)));
        }
    }

    // dlogits[R, V] = (probs - onehot(targets)) * scale, in place of the probabilities
    public static void crossEntropyBackward(FloatArray a, int probs, int targets, int rows, int vocab, float scale) {
        for (@Parallel int idx = 0; idx < rows * vocab; idx++) {
            int r = idx / vocab;
            float p = a.get(probs + idx) * scale;
            a.set(probs + idx, idx % vocab == (int) a.get(targets + r) ? p - scale : p);
        }
    }

    // rowLoss[R] = BCE(sigmoid(z[r]), y[r]) = log(1 + e^-|z|) + max(z, 0) - y z (stable for large |z|)
    public static void binaryCrossEntropy(FloatArray a, int z, int y, int rowLoss, int rows) {
        for (@Parallel int r = 0; r < rows; r++) {
            float zr = a.get(z + r);
            a.set(rowLoss + r, TornadoMath.log(1f + TornadoMath.exp(-TornadoMath.abs(zr))) + TornadoMath.max(zr, 0f) - a.get(y + r) * zr);
        }
    }

    // dz[r] += weight (sigmoid(z) - y) / R
    public static void binaryCrossEntropyBackward(FloatArray a, int z, int y, int dz, int rows, float weight) {
        for (@Parallel int r = 0; r < rows; r++) {
            float s = 1f / (1f + TornadoMath.exp(-a.get(z + r)));
            a.set(dz + r, a.get(dz + r) + weight * (s - a.get(y + r)) / rows);
        }
    }

    // out[0] = mean of values[n], in order (a loss)
    public static void mean(FloatArray a, int values, int out, int n) {
        for (@Parallel int one = 0; one < 1; one++) {
            float sum = 0f;
            for (int i = 0; i < n; i++) {
                sum += a.get(values + i);
            }
            a.set(out + one, sum / n);
        }
    }

    // z[R] = w2[P] . silu(hidden[R, P]): the causal predictor's output
    public static void predictorLogits(FloatArray a, int z, int hidden, int w2, int rows, int p) {
        for (@Parallel int t = 0; t < rows; t++) {
            float sum = 0f;
            for (int j = 0; j < p; j++) {
                float h = a.get(hidden + t * p + j);
                sum += a.get(w2 + j) * (h / (1f + TornadoMath.exp(-h)));
            }
            a.set(z + t, sum);
        }
    }

    // dhidden[R, P] = dz * w2 * silu'(hidden) (written)
    public static void predictorHiddenBackward(FloatArray a, int dhidden, int dz, int hidden, int w2, int rows, int p) {
        for (@Parallel int idx = 0; idx < rows * p; idx++) {
            float h = a.get(hidden + idx);
            float sig = 1f / (1f + TornadoMath.exp(-h));
            a.set(dhidden + idx, a.get(dz + idx / p) * a.get(w2 + idx % p) * sig * (1f + h * (1f - sig)));
        }
    }

    // dw2[P] += sum_r dz[r] * silu(hidden[r]), one item per column
    public static void predictorWeightBackward(FloatArray a, int dw2, int dz, int hidden, int rows, int p) {
        for (@Parallel int j = 0; j < p; j++) {
            float sum = 0f;
            for (int t = 0; t < rows; t++) {
                float h = a.get(hidden + t * p + j);
                sum += a.get(dz + t) * h / (1f + TornadoMath.exp(-h));
            }
            a.set(dw2 + j, a.get(dw2 + j) + sum);
        }
    }

    /** Elements per partial sum of squares: the global norm adds the partials in one fixed order. */
    public static final int NORM_BLOCK = 1024;

    // partial[b] = sum of g^2 over block b of g[n] (blocks of NORM_BLOCK)
    public static void sumSquares(FloatArray a, int g, int partial, int n) {
        for (@Parallel int block = 0; block < (n + NORM_BLOCK - 1) / NORM_BLOCK; block++) {
            float sum = 0f;
            int end = TornadoMath.min(n, (block + 1) * NORM_BLOCK);
            for (int i = block * NORM_BLOCK; i < end; i++) {
                float v = a.get(g + i);
                sum += v * v;
            }
            a.set(partial + block, sum);
        }
    }

    // norm[0] = sqrt(sum of partial[count]) in order, the global norm; norm[1] = the factor that clips it to
    // in[maxNorm] (1 when below, or when that is 0: no clipping)
    public static void clipFactor(FloatArray a, FloatArray in, int maxNorm, int partial, int norm, int count) {
        for (@Parallel int one = 0; one < 1; one++) {
            float sum = 0f;
            for (int i = 0; i < count; i++) {
                sum += a.get(partial + i);
            }
            float total = TornadoMath.sqrt(sum);
            float most = in.get(maxNorm + one);
            a.set(norm, total);
            a.set(norm + 1, most > 0f && total > most ? most / total : 1f);
        }
    }

    // g[n] *= norm[1] (clipping to the global norm)
    public static void scale(FloatArray a, int g, int norm, int n) {
        for (@Parallel int i = 0; i < n; i++) {
            a.set(g + i, a.get(g + i) * a.get(norm + 1));
        }
    }

    /** Where an update's settings sit in its graph's input: learning rate and the two bias corrections. */
    public static final int LR = 0;
    public static final int BIAS1 = 1;
    public static final int BIAS2 = 2;

    // AdamW on p[n] with gradient g: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, p -= lr (m / c1 / (sqrt(v / c2) + eps)
    // + decay p); lr, c1 = 1 - b1^step and c2 = 1 - b2^step from in[hyper]
    public static void adamW(FloatArray a, FloatArray in, int hyper, int p, int g, int m, int v, int n, float decay) {
        for (@Parallel int i = 0; i < n; i++) {
            float beta1 = (float) AdamW.BETA1;
            float beta2 = (float) AdamW.BETA2;
            float gi = a.get(g + i);
            float mi = beta1 * a.get(m + i) + (1f - beta1) * gi;
            float vi = beta2 * a.get(v + i) + (1f - beta2) * gi * gi;
            a.set(m + i, mi);
            a.set(v + i, vi);
            float update = mi / in.get(hyper + BIAS1) / (TornadoMath.sqrt(vi / in.get(hyper + BIAS2)) + (float) AdamW.EPS)
                    + decay * a.get(p + i);
            a.set(p + i, a.get(p + i) - in.get(hyper + LR) * update);
        }
    }
}
