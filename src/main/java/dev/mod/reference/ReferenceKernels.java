package dev.mod.reference;

import dev.mod.model.RouterWeighting;
import dev.mod.model.Tensor;
import dev.mod.plan.Kernels;

import java.util.Arrays;

/**
 * The oracle: plain loops that follow the model's definition word for word, sums in double precision,
 * a full sort for top-k. Clarity over speed; every faster backend is tested against this one.
 */
public final class ReferenceKernels implements Kernels {
    @Override
    public String name() {
        return "reference";
    }

    // x[rows, d] = emb[tokens[r], :]
    @Override
    public void embed(float[] x, int[] tokens, Tensor emb, int rows, int d) {
        for (int r = 0; r < rows; r++) {
            long base = (long) tokens[r] * d;
            for (int i = 0; i < d; i++) {
                x[r * d + i] = emb.get(base + i);
            }
        }
    }

    // out[rows, d] = x[rows, d] / sqrt(mean(x[r]^2) + eps) * w[d]
    @Override
    public void rmsnorm(float[] out, float[] x, Tensor w, int rows, int d, double eps) {
        for (int r = 0; r < rows; r++) {
            double sumSquares = 0;
            for (int i = 0; i < d; i++) {
                double v = x[r * d + i];
                sumSquares += v * v;
            }
            double scale = 1.0 / Math.sqrt(sumSquares / d + eps);
            for (int i = 0; i < d; i++) {
                out[r * d + i] = (float) (x[r * d + i] * scale * w.get(i));
            }
        }
    }

    // out[rows, outDim] = x[rows, in] . w[outDim, in]^T
    @Override
    public void matmul(float[] out, float[] x, Tensor w, int rows, int in, int outDim) {
        for (int r = 0; r < rows; r++) {
            for (int o = 0; o < outDim; o++) {
                long base = (long) o * in;
                double sum = 0;
                for (int i = 0; i < in; i++) {
                    sum += (double) x[r * in + i] * w.get(base + i);
                }
                out[r * outDim + o] = (float) sum;
            }
        }
    }

    // x[rows, heads * dh] in place: pair (2j, 2j+1) of each head rotated by angle pos[r] * theta^(-2j / dh)
    @Override
    public void rope(float[] x, int[] pos, int rows, int heads, int dh, double theta) {
        for (int r = 0; r < rows; r++) {
            for (int h = 0; h < heads; h++) {
                int base = (r * heads + h) * dh;
                for (int j = 0; j < dh / 2; j++) {
                    double angle = pos[r] * Math.pow(theta, -2.0 * j / dh);
                    double cos = Math.cos(angle);
                    double sin = Math.sin(angle);
                    double x0 = x[base + 2 * j];
                    double x1 = x[base + 2 * j + 1];
                    x[base + 2 * j] = (float) (x0 * cos - x1 * sin);
                    x[base + 2 * j + 1] = (float) (x0 * sin + x1 * cos);
                }
            }
        }
    }

    // out[B, n, nHeads * dh] = softmax(q k^T / sqrt(dh), masked to pos[j] <= pos[i]) v, per sequence and head
    @Override
    public void attention(float[] out, float[] q, float[] k, float[] v, int[] pos,
                          int batch, int n, int nHeads, int nKvHeads, int dh) {
        int qDim = nHeads * dh;
        int kvDim = nKvHeads * dh;
        int group = nHeads / nKvHeads;
        double scale = 1.0 / Math.sqrt(dh);
        double[] scores = new double[n];
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < nHeads; h++) {
                int kvHead = h / group;
                for (int i = 0; i < n; i++) {
                    int qi = (b * n + i) * qDim + h * dh;
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < n; j++) {
                        if (pos[b * n + j] > pos[b * n + i]) {
                            scores[j] = Double.NEGATIVE_INFINITY;
                            continue;
                        }
                        int kj = (b * n + j) * kvDim + kvHead * dh;
                        double dot = 0;
                        for (int e = 0; e < dh; e++) {
                            dot += (double) q[qi + e] * k[kj + e];
                        }
                        scores[j] = dot * scale;
                        max = Math.max(max, scores[j]);
                    }
                    softmaxTimesValues(scores, n, max, v, b * n * kvDim + kvHead * dh, kvDim, out, qi, dh);
                }
            }
        }
    }

    // out[oi, dh] = sum_j softmax(scores[0, count))_j v[vBase + j * vStride, dh], max the largest score
    private static void softmaxTimesValues(double[] scores, int count, double max, float[] v, int vBase, int vStride,
                                           float[] out, int oi, int dh) {
        double total = 0;
        for (int j = 0; j < count; j++) {
            scores[j] = Math.exp(scores[j] - max);
            total += scores[j];
        }
        for (int e = 0; e < dh; e++) {
            double acc = 0;
            for (int j = 0; j < count; j++) {
                // A masked key's weight is exactly 0 (exp of -inf): skipped, not added as 0 x v, so that a
                // non-finite value at a later position never reaches an earlier one.
                if (scores[j] != 0) {
                    acc += scores[j] * v[vBase + j * vStride + e];
                }
            }
            out[oi + e] = (float) (acc / total);
        }
    }

    // out[row0 + i, H * dh] = softmax over cache rows j <= start + i of q[row0 + i] . k[j] / sqrt(dh), times v[j], i < n;
    // kT [Hkv * dh, stride] (key j is column j), v [Hkv, stride, dh]
    @Override
    public void cachedAttention(float[] out, float[] q, int row0, int n, float[] kT, int stride, float[] v, int start,
                                int nHeads, int nKvHeads, int dh) {
        int qDim = nHeads * dh;
        int group = nHeads / nKvHeads;
        double scale = 1.0 / Math.sqrt(dh);
        double[] scores = new double[start + n];
        for (int i = 0; i < n; i++) {
            int visible = start + i + 1;
            for (int h = 0; h < nHeads; h++) {
                int qi = (row0 + i) * qDim + h * dh;
                int kvOff = (h / group) * dh;
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < visible; j++) {
                    double dot = 0;
                    for (int e = 0; e < dh; e++) {
                        dot += (double) q[qi + e] * kT[(kvOff + e) * stride + j];
                    }
                    scores[j] = dot * scale;
                    max = Math.max(max, scores[j]);
                }
                softmaxTimesValues(scores, visible, max, v, (h / group) * stride * dh, dh, out, qi, dh);
            }
        }
    }

    // out[len] = silu(gate[len]) * up[len], silu(z) = z * sigmoid(z)
    @Override
    public void swiglu(float[] out, float[] gate, float[] up, int len) {
        for (int i = 0; i < len; i++) {
            double g = gate[i];
            out[i] = (float) (g / (1.0 + Math.exp(-g)) * up[i]);
        }
    }

    // out[len] = a[len] + b[len]
    @Override
    public void add(float[] out, float[] a, float[] b, int len) {
        for (int i = 0; i < len; i++) {
            out[i] = a[i] + b[i];
        }
    }

    // r[rows] = x[rows, d] . w[d]
    @Override
    public void routerLogits(float[] r, float[] x, Tensor w, int rows, int d) {
        matmul(r, x, w, rows, d, 1);
    }

    // p[rows] = softmax over the E experts of logits[rows, E], its column e
    @Override
    public void expertProbabilities(float[] p, float[] logits, int expert, int rows, int experts) {
        for (int r = 0; r < rows; r++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int e = 0; e < experts; e++) {
                max = Math.max(max, logits[r * experts + e]);
            }
            double sum = 0;
            for (int e = 0; e < experts; e++) {
                sum += Math.exp(logits[r * experts + e] - max);
            }
            p[r] = (float) (Math.exp(logits[r * experts + expert] - max) / sum);
        }
    }

    // sel[B, k] = positions of the k largest r[b, :] (ties: lower position first), ascending
    @Override
    public void topK(int[] sel, float[] r, int batch, int seqLen, int k) {
        for (int b = 0; b < batch; b++) {
            int offset = b * seqLen;
            Integer[] order = new Integer[seqLen];
            for (int t = 0; t < seqLen; t++) {
                order[t] = t;
            }
            Arrays.sort(order, (i, j) -> {
                int byValue = Float.compare(r[offset + j], r[offset + i]);
                return byValue != 0 ? byValue : Integer.compare(i, j);
            });
            int[] chosen = new int[k];
            for (int j = 0; j < k; j++) {
                chosen[j] = order[j];
            }
            Arrays.sort(chosen);
            System.arraycopy(chosen, 0, sel, b * k, k);
        }
    }

    // xs[B, k, d] = x[b, sel[b, j], :]
    @Override
    public void gather(float[] xs, float[] x, int[] sel, int batch, int seqLen, int k, int d) {
        for (int b = 0; b < batch; b++) {
            for (int j = 0; j < k; j++) {
                int src = (b * seqLen + sel[b * k + j]) * d;
                System.arraycopy(x, src, xs, (b * k + j) * d, d);
            }
        }
    }

    // x[b, sel[b, j], :] += g(r[b, sel[b, j]]) * f[b, j, :]
    @Override
    public void scatter(float[] x, float[] f, int[] sel, float[] r, RouterWeighting g,
                        int batch, int seqLen, int k, int d) {
        for (int b = 0; b < batch; b++) {
            for (int j = 0; j < k; j++) {
                int row = b * seqLen + sel[b * k + j];
                double weight = g.apply(r[row]);
                for (int i = 0; i < d; i++) {
                    x[row * d + i] = (float) (x[row * d + i] + weight * f[(b * k + j) * d + i]);
                }
            }
        }
    }
}
