package dev.mod.train;

import dev.mod.model.RouterWeighting;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;
import java.util.function.DoubleSupplier;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Each backward kernel against central finite differences of its forward twin, on its own: the loss is a
 * fixed random projection of the kernel's output, L = sum(c * out), so dout = c; every input entry the
 * kernel reads is perturbed and the loss recomputed (summed in double).
 */
class TrainKernelsGradientTest {
    private static final SplittableRandom RANDOM = new SplittableRandom(17);
    private static final TrainMatmul MATMUL = new TrainMatmul(2);
    private static final dev.mod.cpu.RowKernels ROWS = new dev.mod.cpu.RowKernels(MATMUL.pool());

    @AfterAll
    static void close() {
        MATMUL.close();
    }

    private static float[] random(int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) RANDOM.nextGaussian();
        }
        return a;
    }

    private static double dot(float[] c, float[] out) {
        double s = 0;
        for (int i = 0; i < c.length; i++) {
            s += (double) c[i] * out[i];
        }
        return s;
    }

    /** Every entry of x: analytic[i] against (L(x + eps) - L(x - eps)) / 2 eps. */
    private static void check(String what, float[] x, float[] analytic, DoubleSupplier loss) {
        for (int i = 0; i < x.length; i++) {
            float saved = x[i];
            float eps = 1e-2f * Math.max(1f, Math.abs(saved));
            x[i] = saved + eps;
            double plus = loss.getAsDouble();
            x[i] = saved - eps;
            double minus = loss.getAsDouble();
            x[i] = saved;
            double numeric = (plus - minus) / (2.0 * eps);
            double error = Math.abs(numeric - analytic[i]) / Math.max(1e-2, Math.abs(numeric) + Math.abs(analytic[i]));
            assertTrue(error < 1e-2, what + "[" + i + "]: analytic " + analytic[i] + ", numeric " + numeric);
        }
    }

    @Test
    void rmsnorm() {
        int rows = 3;
        int d = 40;
        float[] x = random(rows * d);
        float[] w = random(d);
        float[] c = random(rows * d);
        float[] out = new float[rows * d];
        DoubleSupplier loss = () -> {
            ROWS.rmsnorm(out, x, w, rows, d, 1e-5);
            return dot(c, out);
        };
        float[] dx = new float[rows * d];
        float[] dw = new float[d];
        ROWS.rmsnormBackward(dx, c, x, w, rows, d, 1e-5);
        TrainKernels.rmsnormWeightGrad(dw, c, x, rows, d, 1e-5);
        check("rmsnorm dx", x, dx, loss);
        check("rmsnorm dw", w, dw, loss);
    }

    @Test
    void ropeSwigluAndRouter() {
        int rows = 3;
        int heads = 2;
        int dh = 4;
        int[] pos = {0, 5, 9};
        float[] cos = new float[10 * dh / 2];
        float[] sin = new float[cos.length];
        float[] sinBack = new float[cos.length];
        for (int p = 0; p < 10; p++) {
            for (int j = 0; j < dh / 2; j++) {
                double angle = p * Math.pow(100, -2.0 * j / dh);
                cos[p * dh / 2 + j] = (float) Math.cos(angle);
                sin[p * dh / 2 + j] = (float) Math.sin(angle);
                sinBack[p * dh / 2 + j] = -sin[p * dh / 2 + j];
            }
        }
        float[] x = random(rows * heads * dh);
        float[] c = random(x.length);
        DoubleSupplier ropeLoss = () -> {
            float[] y = x.clone();
            ROWS.rope(y, pos, cos, sin, rows, heads, dh);
            return dot(c, y);
        };
        float[] dx = c.clone();
        ROWS.rope(dx, pos, cos, sinBack, rows, heads, dh);
        check("rope dx", x, dx, ropeLoss);

        float[] gate = random(40);
        float[] up = random(40);
        float[] cs = random(40);
        float[] out = new float[40];
        DoubleSupplier swigluLoss = () -> {
            ROWS.swiglu(out, gate, up, 40);
            return dot(cs, out);
        };
        float[] dgate = new float[40];
        float[] dup = new float[40];
        ROWS.swigluBackward(dgate, dup, cs, gate, up, 40);
        check("swiglu dgate", gate, dgate, swigluLoss);
        check("swiglu dup", up, dup, swigluLoss);

        float[] xr = random(4 * 6);
        float[] w = random(6);
        float[] cr = random(4);
        float[] r = new float[4];
        DoubleSupplier routerLoss = () -> {
            ROWS.routerLogits(r, xr, w, 4, 6);
            return dot(cr, r);
        };
        float[] dxr = new float[xr.length];
        float[] dw = new float[6];
        TrainKernels.routerLogitsBackward(dxr, dw, cr, xr, w, 4, 6);
        check("router dx", xr, dxr, routerLoss);
        check("router dw", w, dw, routerLoss);
    }

    @Test
    void scatterReachesTheRouterThroughItsWeight() {
        for (RouterWeighting g : RouterWeighting.values()) {
            int batch = 2;
            int seqLen = 5;
            int k = 2;
            int d = 3;
            int[] sel = {1, 3, 0, 4};
            float[] x = random(batch * seqLen * d);
            float[] f = random(batch * k * d);
            float[] r = random(batch * seqLen);
            float[] c = random(x.length);
            DoubleSupplier loss = () -> {
                float[] y = x.clone();
                TrainKernels.scatter(y, f, sel, r, g, batch, seqLen, k, d);
                return dot(c, y);
            };
            float[] df = new float[f.length];
            float[] dr = new float[r.length];
            TrainKernels.scatterBackward(df, dr, c, f, sel, r, g, batch, seqLen, k, d);
            check(g + " scatter df", f, df, loss);
            check(g + " scatter dr", r, dr, loss);
            check(g + " scatter dx (identity)", x, c, loss);

            float[] xs = new float[batch * k * d];
            float[] cg = random(xs.length);
            DoubleSupplier gatherLoss = () -> {
                TrainKernels.gather(xs, x, sel, batch, seqLen, k, d);
                return dot(cg, xs);
            };
            float[] dxg = new float[x.length];
            TrainKernels.gatherBackward(dxg, cg, sel, batch, seqLen, k, d);
            check("gather dx", x, dxg, gatherLoss);
        }
    }

    @Test
    void lossesAndEmbedding() {
        int rows = 3;
        int vocab = 5;
        int[] targets = {4, 0, 2};
        float[] logits = random(rows * vocab);
        DoubleSupplier ce = () -> TrainKernels.crossEntropy(logits.clone(), targets, rows, vocab);
        float[] probs = logits.clone();
        TrainKernels.crossEntropy(probs, targets, rows, vocab);
        float[] dlogits = new float[probs.length];
        TrainKernels.crossEntropyBackward(dlogits, probs, targets, rows, vocab, 1f / rows);
        check("cross-entropy dlogits", logits, dlogits, ce);

        float[] z = random(6);
        int[] y = {1, 0, 0, 1, 1, 0};
        DoubleSupplier bce = () -> 0.7 * TrainKernels.binaryCrossEntropy(null, z, y, 6, 0);
        float[] dz = new float[6];
        TrainKernels.binaryCrossEntropy(dz, z, y, 6, 0.7f);
        check("bce dz", z, dz, bce);

        float[] emb = random(7 * 4);
        int[] tok = {3, 6, 3};
        float[] c = random(3 * 4);
        float[] x = new float[3 * 4];
        DoubleSupplier embLoss = () -> {
            TrainKernels.embed(x, tok, emb, 3, 4);
            return dot(c, x);
        };
        float[] demb = new float[emb.length];
        TrainKernels.embedBackward(demb, c, tok, 3, 4);
        check("embedding", emb, demb, embLoss);
    }

    @Test
    void matmul() {
        int rows = 5;
        int in = 7;
        int out = 50;
        float[] x = random(rows * in);
        float[] w = random(out * in);
        float[] c = random(rows * out);
        float[] y = new float[rows * out];
        TrainMatmul.Weight weight = new TrainMatmul.Weight(out, in);
        DoubleSupplier loss = () -> {
            weight.refresh(MATMUL, w);
            MATMUL.forward(y, x, weight, rows);
            return dot(c, y);
        };
        loss.getAsDouble();
        float[] dx = new float[x.length];
        float[] dw = new float[w.length];
        MATMUL.backwardInput(dx, c, weight, rows);
        MATMUL.backwardWeight(dw, c, x, rows, out, in);
        check("matmul dx", x, dx, loss);
        check("matmul dw", w, dw, loss);
    }

    /** Head sizes below, at and between whole vectors; rows not a multiple of the 4-row blocks. */
    @org.junit.jupiter.params.ParameterizedTest(name = "n {0}, dh {1}")
    @org.junit.jupiter.params.provider.CsvSource({"5, 4", "7, 32", "9, 20"})
    void causalAttentionWithGroupedHeads(int n, int dh) {
        int batch = 2;
        int heads = 4;
        int kvHeads = 2;
        float[] q = random(batch * n * heads * dh);
        float[] k = random(batch * n * kvHeads * dh);
        float[] v = random(k.length);
        float[] c = random(q.length);
        float[] out = new float[q.length];
        float[] lse = new float[batch * heads * n];
        dev.mod.cpu.CausalAttention forward = new dev.mod.cpu.CausalAttention(2);
        TrainAttention attention = new TrainAttention(MATMUL.pool(), 2);
        DoubleSupplier loss = () -> {
            forward.attend(MATMUL.pool(), out, lse, q, k, v, batch, n, heads, kvHeads, dh);
            return dot(c, out);
        };
        loss.getAsDouble();
        float[] dq = new float[q.length];
        float[] dk = new float[k.length];
        float[] dv = new float[v.length];
        attention.backward(dq, dk, dv, c, out.clone(), lse.clone(), q, k, v, batch, n, heads, kvHeads, dh);
        check("attention dq", q, dq, loss);
        check("attention dk", k, dk, loss);
        check("attention dv", v, dv, loss);
    }
}
