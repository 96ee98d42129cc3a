package dev.mod.cpu;

import dev.mod.model.RouterWeighting;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The forward kernels of training and, beside each, its backward twin (in the spirit of llm.c), where the
 * cpu backend has no vector kernel for them: plain loops over row-major float arrays, shapes in the comment
 * above each. Backward kernels add into the gradients of their inputs ("+="), so that a tensor read by
 * several operations collects all of its gradient. The forward kernels the cpu backend already has (RMSNorm,
 * RoPE, SwiGLU, router logits, gather, scatter) are {@link RowKernels}, where the RMSNorm,
 * RoPE and SwiGLU twins live too; here are the twins of gather, scatter and the router, and the experts'
 * probabilities with theirs; matrix products and
 * attention are in {@link TrainMatmul} and {@link TrainAttention}.
 */
public final class TrainKernels {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();

    private TrainKernels() {
    }

    // x[R, d] = emb[tok[r], :]
    static void embed(float[] x, int[] tok, float[] emb, int rows, int d) {
        for (int r = 0; r < rows; r++) {
            System.arraycopy(emb, tok[r] * d, x, r * d, d);
        }
    }

    // demb[tok[r], :] += dx[r, :]
    static void embedBackward(float[] demb, float[] dx, int[] tok, int rows, int d) {
        for (int r = 0; r < rows; r++) {
            int e = tok[r] * d;
            for (int i = 0; i < d; i++) {
                demb[e + i] += dx[r * d + i];
            }
        }
    }

    // dw[d] += sum_r dout[r] * x[r] * rstd[r], rstd = 1 / sqrt(mean(x[r]^2) + eps): RMSNorm's weight gradient
    // (its input gradient is the cpu backend's vector kernel). In vectors, as it runs over every row twice per
    // layer; rstd as the forward computes it, from a float dot.
    static void rmsnormWeightGrad(float[] dw, float[] dout, float[] x, int rows, int d, double eps) {
        for (int r = 0; r < rows; r++) {
            int o = r * d;
            float rstd = (float) (1.0 / Math.sqrt(VectorMath.dot(x, o, x, o, d) / d + eps));
            int i = 0;
            for (; i + L <= d; i += L) {
                FloatVector.fromArray(S, dout, o + i).mul(FloatVector.fromArray(S, x, o + i)).mul(rstd)
                        .add(FloatVector.fromArray(S, dw, i)).intoArray(dw, i);
            }
            for (; i < d; i++) {
                dw[i] += dout[o + i] * x[o + i] * rstd;
            }
        }
    }

    // dx[R, d] += dr[t] * w; dw[d] += sum_t dr[t] * x[t] (in vectors, as it runs over every row)
    static void routerLogitsBackward(float[] dx, float[] dw, float[] dr, float[] x, float[] w, int rows, int d) {
        for (int t = 0; t < rows; t++) {
            float g = dr[t];
            if (g == 0) {
                continue;
            }
            int o = t * d;
            int i = 0;
            for (; i + L <= d; i += L) {
                FloatVector.fromArray(S, w, i).mul(g).add(FloatVector.fromArray(S, dx, o + i)).intoArray(dx, o + i);
                FloatVector.fromArray(S, x, o + i).mul(g).add(FloatVector.fromArray(S, dw, i)).intoArray(dw, i);
            }
            for (; i < d; i++) {
                dx[o + i] += g * w[i];
                dw[i] += g * x[o + i];
            }
        }
    }

    // dx[b, sel[b, j], :] += dxs[b, j, :]
    static void gatherBackward(float[] dx, float[] dxs, int[] sel, int batch, int seqLen, int k, int d) {
        for (int b = 0; b < batch; b++) {
            for (int j = 0; j < k; j++) {
                int to = (b * seqLen + sel[b * k + j]) * d;
                int from = (b * k + j) * d;
                for (int i = 0; i < d; i++) {
                    dx[to + i] += dxs[from + i];
                }
            }
        }
    }

    // df[b, j, :] = g(r) * dx[b, sel, :] (written); dr[b, sel] += g'(r) * (f[b, j] . dx[b, sel]); dx itself passes through
    static void scatterBackward(float[] df, float[] dr, float[] dx, float[] f, int[] sel, float[] r, RouterWeighting g,
                                int batch, int seqLen, int k, int d) {
        for (int b = 0; b < batch; b++) {
            for (int j = 0; j < k; j++) {
                int t = b * seqLen + sel[b * k + j];
                float gain = (float) g.apply(r[t]);
                double dot = 0;
                for (int i = 0; i < d; i++) {
                    df[(b * k + j) * d + i] = gain * dx[t * d + i];
                    dot += (double) f[(b * k + j) * d + i] * dx[t * d + i];
                }
                dr[t] += (float) (g.derivative(r[t]) * dot);
            }
        }
    }

    // p[rows] = softmax over the E experts of logits[rows, E], its column e (in double, as the reference computes it,
    // so that both backends' experts rank rows alike)
    static void expertProbabilities(float[] p, float[] logits, int expert, int rows, int experts) {
        for (int r = 0; r < rows; r++) {
            int base = r * experts;
            double max = max(logits, base, experts);
            p[r] = (float) (Math.exp(logits[base + expert] - max) / sumExp(logits, base, experts, max));
        }
    }

    // dlogits[rows, E] += dp[r] * p_e (delta_ej - p_j): the softmax's gradient from column e's dp[rows]
    static void expertProbabilitiesBackward(float[] dlogits, float[] dp, float[] logits, int expert, int rows, int experts) {
        for (int r = 0; r < rows; r++) {
            if (dp[r] == 0) {
                continue; // a row the expert did not take: nothing flows back from it
            }
            int base = r * experts;
            double max = max(logits, base, experts);
            double sum = sumExp(logits, base, experts, max);
            double pe = Math.exp(logits[base + expert] - max) / sum;
            for (int j = 0; j < experts; j++) {
                double pj = Math.exp(logits[base + j] - max) / sum;
                dlogits[base + j] += (float) (dp[r] * pe * ((j == expert ? 1 : 0) - pj));
            }
        }
    }

    // the largest of a[from .. from + len)
    private static double max(float[] a, int from, int len) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = from; i < from + len; i++) {
            max = Math.max(max, a[i]);
        }
        return max;
    }

    // the sum of exp(a[i] - max) over a[from .. from + len)
    private static double sumExp(float[] a, int from, int len, double max) {
        double sum = 0;
        for (int i = from; i < from + len; i++) {
            sum += Math.exp(a[i] - max);
        }
        return sum;
    }

    // loss = mean over R of -log softmax(logits[r])[target[r]]; logits[R, V] become the probabilities
    public static double crossEntropy(float[] logits, int[] targets, int rows, int vocab) {
        double loss = 0;
        for (int r = 0; r < rows; r++) {
            int o = r * vocab;
            float max = Float.NEGATIVE_INFINITY;
            for (int v = 0; v < vocab; v++) {
                max = Math.max(max, logits[o + v]);
            }
            double sum = 0;
            for (int v = 0; v < vocab; v++) {
                float e = (float) Math.exp(logits[o + v] - max);
                logits[o + v] = e;
                sum += e;
            }
            float inv = (float) (1 / sum);
            for (int v = 0; v < vocab; v++) {
                logits[o + v] *= inv;
            }
            loss -= Math.log(Math.max(logits[o + targets[r]], Float.MIN_NORMAL));
        }
        return loss / rows;
    }

    // dlogits[R, V] = (probs - onehot(target)) * scale (written)
    static void crossEntropyBackward(float[] dlogits, float[] probs, int[] targets, int rows, int vocab, float scale) {
        for (int r = 0; r < rows; r++) {
            int o = r * vocab;
            for (int v = 0; v < vocab; v++) {
                dlogits[o + v] = probs[o + v] * scale;
            }
            dlogits[o + targets[r]] -= scale;
        }
    }

    // loss = mean over R of BCE(sigmoid(z[r]), y[r]); dz[r] += weight * (sigmoid(z) - y) / R
    static double binaryCrossEntropy(float[] dz, float[] z, int[] y, int rows, float weight) {
        double loss = 0;
        for (int r = 0; r < rows; r++) {
            double s = 1 / (1 + Math.exp(-z[r]));
            // log(1 + e^-|z|) + max(z, 0) - y z: stable for large |z|
            loss += Math.log1p(Math.exp(-Math.abs(z[r]))) + Math.max(z[r], 0) - y[r] * z[r];
            if (dz != null) {
                dz[r] += (float) (weight * (s - y[r]) / rows);
            }
        }
        return loss / rows;
    }

    // z[R] = w2[P] . silu(hidden[R, P])
    static void predictorLogits(float[] z, float[] hidden, float[] w2, int rows, int p) {
        for (int t = 0; t < rows; t++) {
            double sum = 0;
            for (int j = 0; j < p; j++) {
                float h = hidden[t * p + j];
                sum += w2[j] * (h / (1 + Math.exp(-h)));
            }
            z[t] = (float) sum;
        }
    }

    // dhidden[R, P] = dz * w2 * silu'(hidden) (written), dw2[P] += sum_r dz[r] * silu(hidden[r])
    static void predictorLogitsBackward(float[] dhidden, float[] dw2, float[] dz, float[] hidden, float[] w2, int rows, int p) {
        for (int t = 0; t < rows; t++) {
            for (int j = 0; j < p; j++) {
                float h = hidden[t * p + j];
                float sig = 1 / (1 + (float) Math.exp(-h));
                dw2[j] += dz[t] * h * sig;
                dhidden[t * p + j] = dz[t] * w2[j] * sig * (1 + h * (1 - sig));
            }
        }
    }
}
