package dev.mod.cpu;

import dev.mod.model.RouterWeighting;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.SplittableRandom;
import java.util.function.ToDoubleFunction;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Each backward kernel on its own against central finite differences in double precision: the loss is a
 * fixed random projection of the kernel's output, L = sum(c * out), so dout = c; the test transcribes the
 * forward kernel in double (the kernel under test runs in float), perturbs every input entry by 1e-6 and
 * differentiates numerically. The float kernels' analytic gradients must agree within 1e-3 relative.
 */
class TrainKernelsGradientTest {
    private static final SplittableRandom RANDOM = new SplittableRandom(17);
    private static final TrainMatmul MATMUL = new TrainMatmul(2);
    private static final RowKernels ROWS = new RowKernels(MATMUL.pool());

    @AfterAll
    static void close() {
        MATMUL.close();
    }

    private static double[] random(int n) {
        double[] a = new double[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) RANDOM.nextGaussian();
        }
        return a;
    }

    private static float[] f(double[] a) {
        float[] x = new float[a.length];
        for (int i = 0; i < a.length; i++) {
            x[i] = (float) a[i];
        }
        return x;
    }

    private static double dot(double[] c, double[] out) {
        double s = 0;
        for (int i = 0; i < c.length; i++) {
            s += c[i] * out[i];
        }
        return s;
    }

    /**
     * Every entry of x: analytic[i] against (L(x + eps) - L(x - eps)) / 2 eps, all in double. Tolerance: 1e-3
     * relative, plus 1e-5 of the largest entry for float noise (a gradient that is exactly zero, such as the
     * first query row's in causal attention, comes out of float kernels as noise of that size).
     */
    private static void check(String what, double[] x, float[] analytic, ToDoubleFunction<double[]> loss) {
        check(what, x, analytic, loss, 1);
    }

    /** As above for every stride-th entry: for shapes too large to difference every entry. */
    private static void check(String what, double[] x, float[] analytic, ToDoubleFunction<double[]> loss, int stride) {
        double largest = 0;
        for (float a : analytic) {
            largest = Math.max(largest, Math.abs(a));
        }
        for (int i = 0; i < x.length; i += stride) {
            double saved = x[i];
            double eps = 1e-6 * Math.max(1, Math.abs(saved));
            x[i] = saved + eps;
            double plus = loss.applyAsDouble(x);
            x[i] = saved - eps;
            double minus = loss.applyAsDouble(x);
            x[i] = saved;
            double numeric = (plus - minus) / (2 * eps);
            double allowed = 1e-3 * (Math.abs(numeric) + Math.abs(analytic[i])) + 1e-5 * largest;
            assertTrue(Math.abs(numeric - analytic[i]) <= allowed, what + "[" + i + "]: analytic " + analytic[i] + ", numeric " + numeric);
        }
    }

    // y[rows, d] = x / sqrt(mean(x^2) + eps) * w, in double
    private static double[] rmsnorm(double[] x, double[] w, int rows, int d) {
        double[] y = new double[rows * d];
        for (int r = 0; r < rows; r++) {
            double sum = 0;
            for (int i = 0; i < d; i++) {
                sum += x[r * d + i] * x[r * d + i];
            }
            double s = 1 / Math.sqrt(sum / d + 1e-5);
            for (int i = 0; i < d; i++) {
                y[r * d + i] = x[r * d + i] * s * w[i];
            }
        }
        return y;
    }

    @Test
    void rmsnorm() {
        int rows = 3;
        int d = 40;
        double[] x = random(rows * d);
        double[] w = random(d);
        double[] c = random(rows * d);
        float[] dx = new float[rows * d];
        float[] dw = new float[d];
        ROWS.rmsnormBackward(dx, f(c), f(x), f(w), rows, d, 1e-5);
        TrainKernels.rmsnormWeightGrad(dw, f(c), f(x), rows, d, 1e-5);
        check("rmsnorm dx", x, dx, v -> dot(c, rmsnorm(v, w, rows, d)));
        check("rmsnorm dw", w, dw, v -> dot(c, rmsnorm(x, v, rows, d)));
    }

    @Test
    void rope() {
        int rows = 3;
        int heads = 2;
        int dh = 4;
        int[] pos = {0, 5, 9};
        float[] cos = new float[10 * dh / 2];
        float[] sinBack = new float[cos.length];
        for (int p = 0; p < 10; p++) {
            for (int j = 0; j < dh / 2; j++) {
                double angle = p * Math.pow(100, -2.0 * j / dh);
                cos[p * dh / 2 + j] = (float) Math.cos(angle);
                sinBack[p * dh / 2 + j] = (float) -Math.sin(angle);
            }
        }
        double[] x = random(rows * heads * dh);
        double[] c = random(x.length);
        float[] dx = f(c);
        ROWS.rope(dx, pos, cos, sinBack, rows, heads, dh);
        check("rope dx", x, dx, v -> {
            double[] y = v.clone();
            for (int r = 0; r < rows; r++) {
                for (int j = 0; j < dh / 2; j++) {
                    double angle = pos[r] * Math.pow(100, -2.0 * j / dh);
                    for (int h = 0; h < heads; h++) {
                        int i = (r * heads + h) * dh + 2 * j;
                        y[i] = v[i] * Math.cos(angle) - v[i + 1] * Math.sin(angle);
                        y[i + 1] = v[i] * Math.sin(angle) + v[i + 1] * Math.cos(angle);
                    }
                }
            }
            return dot(c, y);
        });
    }

    @Test
    void swigluAndRouter() {
        int len = 40;
        double[] gate = random(len);
        double[] up = random(len);
        double[] c = random(len);
        float[] dgate = new float[len];
        float[] dup = new float[len];
        ROWS.swigluBackward(dgate, dup, f(c), f(gate), f(up), len);
        ToDoubleFunction<double[][]> swiglu = gu -> {
            double s = 0;
            for (int i = 0; i < len; i++) {
                s += c[i] * gu[0][i] / (1 + Math.exp(-gu[0][i])) * gu[1][i];
            }
            return s;
        };
        check("swiglu dgate", gate, dgate, v -> swiglu.applyAsDouble(new double[][] {v, up}));
        check("swiglu dup", up, dup, v -> swiglu.applyAsDouble(new double[][] {gate, v}));

        int rows = 4;
        int d = 6;
        double[] x = random(rows * d);
        double[] w = random(d);
        double[] cr = random(rows);
        float[] dx = new float[x.length];
        float[] dw = new float[d];
        TrainKernels.routerLogitsBackward(dx, dw, f(cr), f(x), f(w), rows, d);
        ToDoubleFunction<double[][]> router = xw -> {
            double s = 0;
            for (int t = 0; t < rows; t++) {
                for (int i = 0; i < d; i++) {
                    s += cr[t] * xw[0][t * d + i] * xw[1][i];
                }
            }
            return s;
        };
        check("router dx", x, dx, v -> router.applyAsDouble(new double[][] {v, w}));
        check("router dw", w, dw, v -> router.applyAsDouble(new double[][] {x, v}));
    }

    @Test
    void scatterReachesTheRouterThroughItsWeightAndGatherCopies() {
        for (RouterWeighting g : RouterWeighting.values()) {
            int batch = 2;
            int seqLen = 5;
            int k = 2;
            int d = 3;
            int[] sel = {1, 3, 0, 4};
            double[] x = random(batch * seqLen * d);
            double[] fx = random(batch * k * d);
            double[] r = random(batch * seqLen);
            double[] c = random(x.length);
            float[] df = new float[fx.length];
            float[] dr = new float[r.length];
            TrainKernels.scatterBackward(df, dr, f(c), f(fx), sel, f(r), g, batch, seqLen, k, d);
            // L = c . (x + scatter(g(r) f)): x passes through, so dL/dx = c
            ToDoubleFunction<double[][]> scatter = frx -> {
                double[] y = frx[2].clone();
                for (int b = 0; b < batch; b++) {
                    for (int j = 0; j < k; j++) {
                        int t = b * seqLen + sel[b * k + j];
                        for (int i = 0; i < d; i++) {
                            y[t * d + i] += g.apply(frx[1][t]) * frx[0][(b * k + j) * d + i];
                        }
                    }
                }
                return dot(c, y);
            };
            check(g + " scatter df", fx, df, v -> scatter.applyAsDouble(new double[][] {v, r, x}));
            check(g + " scatter dr", r, dr, v -> scatter.applyAsDouble(new double[][] {fx, v, x}));
            check(g + " scatter dx", x, f(c), v -> scatter.applyAsDouble(new double[][] {fx, r, v}));

            double[] cg = random(batch * k * d);
            float[] dxg = new float[x.length];
            TrainKernels.gatherBackward(dxg, f(cg), sel, batch, seqLen, k, d);
            check("gather dx", x, dxg, v -> {
                double s = 0;
                for (int b = 0; b < batch; b++) {
                    for (int j = 0; j < k; j++) {
                        for (int i = 0; i < d; i++) {
                            s += cg[(b * k + j) * d + i] * v[(b * seqLen + sel[b * k + j]) * d + i];
                        }
                    }
                }
                return s;
            });
        }
    }

    @Test
    void lossesAndEmbedding() {
        int rows = 3;
        int vocab = 5;
        int[] targets = {4, 0, 2};
        double[] logits = random(rows * vocab);
        float[] probs = f(logits);
        TrainKernels.crossEntropy(probs, targets, rows, vocab);
        float[] dlogits = new float[probs.length];
        TrainKernels.crossEntropyBackward(dlogits, probs, targets, rows, vocab, 1f / rows);
        check("cross-entropy dlogits", logits, dlogits, v -> {
            double loss = 0;
            for (int r = 0; r < rows; r++) {
                double sum = 0;
                for (int i = 0; i < vocab; i++) {
                    sum += Math.exp(v[r * vocab + i]);
                }
                loss += Math.log(sum) - v[r * vocab + targets[r]];
            }
            return loss / rows;
        });

        double[] z = random(6);
        int[] y = {1, 0, 0, 1, 1, 0};
        float[] dz = new float[6];
        TrainKernels.binaryCrossEntropy(dz, f(z), y, 6, 0.7f);
        check("bce dz", z, dz, v -> {
            double loss = 0;
            for (int i = 0; i < 6; i++) {
                double s = 1 / (1 + Math.exp(-v[i]));
                loss -= y[i] * Math.log(s) + (1 - y[i]) * Math.log(1 - s);
            }
            return 0.7 * loss / 6;
        });

        double[] emb = random(7 * 4);
        int[] tok = {3, 6, 3};
        double[] c = random(3 * 4);
        float[] demb = new float[emb.length];
        TrainKernels.embedBackward(demb, f(c), tok, 3, 4);
        check("embedding", emb, demb, v -> {
            double s = 0;
            for (int r = 0; r < 3; r++) {
                for (int i = 0; i < 4; i++) {
                    s += c[r * 4 + i] * v[tok[r] * 4 + i];
                }
            }
            return s;
        });
    }

    @Test
    void matmul() {
        int rows = 5;
        int in = 7;
        int out = 50;
        double[] x = random(rows * in);
        double[] w = random(out * in);
        double[] c = random(rows * out);
        TrainMatmul.Weight weight = new TrainMatmul.Weight(out, in);
        weight.refresh(MATMUL, f(w));
        float[] dx = new float[x.length];
        float[] dw = new float[w.length];
        MATMUL.backwardInput(dx, f(c), weight, rows);
        MATMUL.backwardWeight(dw, f(c), f(x), rows, out, in);
        ToDoubleFunction<double[][]> product = xw -> {
            double s = 0;
            for (int r = 0; r < rows; r++) {
                for (int o = 0; o < out; o++) {
                    double y = 0;
                    for (int i = 0; i < in; i++) {
                        y += xw[0][r * in + i] * xw[1][o * in + i];
                    }
                    s += c[r * out + o] * y;
                }
            }
            return s;
        };
        check("matmul dx", x, dx, v -> product.applyAsDouble(new double[][] {v, w}));
        check("matmul dw", w, dw, v -> product.applyAsDouble(new double[][] {x, v}));
    }

    // out[B, n, H * dh] = causal softmax(q k^T / sqrt(dh)) v with grouped kv heads, in double
    private static double[] attention(double[] q, double[] k, double[] v, int batch, int n, int heads, int kvHeads, int dh) {
        double[] out = new double[q.length];
        int group = heads / kvHeads;
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                int g = h / group;
                for (int i = 0; i < n; i++) {
                    double[] s = new double[i + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j <= i; j++) {
                        for (int e = 0; e < dh; e++) {
                            s[j] += q[((b * n + i) * heads + h) * dh + e] * k[((b * n + j) * kvHeads + g) * dh + e];
                        }
                        s[j] /= Math.sqrt(dh);
                        max = Math.max(max, s[j]);
                    }
                    double total = 0;
                    for (int j = 0; j <= i; j++) {
                        s[j] = Math.exp(s[j] - max);
                        total += s[j];
                    }
                    for (int j = 0; j <= i; j++) {
                        for (int e = 0; e < dh; e++) {
                            out[((b * n + i) * heads + h) * dh + e] += s[j] / total * v[((b * n + j) * kvHeads + g) * dh + e];
                        }
                    }
                }
            }
        }
        return out;
    }

    /**
     * Head sizes below, at and between whole vectors (and past the kernel's 4-vector tiles); rows not a multiple
     * of the query blocks and more than one block; more keys than one 4-vector tile. Large shapes are differenced
     * at every stride-th entry.
     */
    @ParameterizedTest(name = "n {0}, dh {1}")
    @CsvSource({"5, 4", "7, 32", "9, 20", "37, 64", "70, 80"})
    void causalAttentionWithGroupedHeads(int n, int dh) {
        int batch = 2;
        int heads = 4;
        int kvHeads = 2;
        double[] q = random(batch * n * heads * dh);
        double[] k = random(batch * n * kvHeads * dh);
        double[] v = random(k.length);
        double[] c = random(q.length);
        float[] out = new float[q.length];
        float[] lse = new float[batch * heads * n];
        new CausalAttention(2).attend(MATMUL.pool(), out, lse, f(q), f(k), f(v), batch, n, heads, kvHeads, dh);
        float[] dq = new float[q.length];
        float[] dk = new float[k.length];
        float[] dv = new float[v.length];
        new TrainAttention(MATMUL.pool(), 2).backward(dq, dk, dv, f(c), out, lse, f(q), f(k), f(v), batch, n, heads, kvHeads, dh);
        int stride = Math.max(1, k.length / 150) | 1;
        check("attention dq", q, dq, x -> dot(c, attention(x, k, v, batch, n, heads, kvHeads, dh)), stride);
        check("attention dk", k, dk, x -> dot(c, attention(q, x, v, batch, n, heads, kvHeads, dh)), stride);
        check("attention dv", v, dv, x -> dot(c, attention(q, k, x, batch, n, heads, kvHeads, dh)), stride);
    }
}
