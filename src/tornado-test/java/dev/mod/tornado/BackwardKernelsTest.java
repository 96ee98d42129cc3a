package dev.mod.tornado;

import dev.mod.OclgrindLogCheck;
import dev.mod.cpu.CpuTrainingKernels;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.RouterWeighting;
import dev.mod.train.AdamW;
import dev.mod.train.Parameters;
import dev.mod.train.TrainingKernels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Training's device kernels (BackwardKernels) on TornadoVM's default device against the cpu backend's training
 * kernels, whose every backward twin is checked against finite differences (TrainKernelsGradientTest): the same
 * values within float rounding, on small shapes with partial blocks, GQA and both router weightings.
 */
@ExtendWith(OclgrindLogCheck.class)
class BackwardKernelsTest {
    private static final CpuTrainingKernels CPU = new CpuTrainingKernels(2);
    private static int graphs;

    @AfterAll
    static void close() {
        CPU.close();
    }

    // runs the tasks on TornadoVM's default device: `in` moved in, `out` brought back (an array updated in place is both)
    private static void run(Consumer<TaskGraph> tasks, Object[] in, Object... out) throws Exception {
        TaskGraph g = new TaskGraph("backward" + graphs++);
        g.transferToDevice(DataTransferMode.EVERY_EXECUTION, in);
        tasks.accept(g);
        g.transferToHost(DataTransferMode.EVERY_EXECUTION, out);
        try (TornadoExecutionPlan plan = new TornadoExecutionPlan(g.snapshot())) {
            plan.execute();
        }
    }

    private static Object[] in(Object... arrays) {
        return arrays;
    }

    private static float[] random(int n, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) random.nextGaussian();
        }
        return a;
    }

    private static int[] ints(int n, int bound, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        int[] a = new int[n];
        for (int i = 0; i < n; i++) {
            a[i] = random.nextInt(bound);
        }
        return a;
    }

    private static FloatArray f(float[] a) {
        return FloatArray.fromArray(a);
    }

    private static IntArray i(int[] a) {
        return IntArray.fromArray(a);
    }

    // each value within 1e-5 of the largest expected magnitude (at least 1): float sums in another order
    private static void close(float[] expected, FloatArray actual, String what) {
        float[] got = actual.toHeapArray();
        assertEquals(expected.length, got.length, what + ": length");
        double largest = 1;
        for (float e : expected) {
            largest = Math.max(largest, Math.abs(e));
        }
        for (int k = 0; k < expected.length; k++) {
            assertEquals(expected[k], got[k], 1e-5 * largest, what + "[" + k + "]");
        }
    }

    private static double mean(FloatArray a) {
        double sum = 0;
        for (int k = 0; k < a.getSize(); k++) {
            sum += a.get(k);
        }
        return sum / a.getSize();
    }

    @Test
    void crossEntropyAndItsGradient() throws Exception {
        int rows = 6;
        int vocab = 11;
        float[] logits = random(rows * vocab, 1);
        int[] targets = ints(rows, vocab, 2);
        float[] probs = logits.clone();
        double loss = CPU.crossEntropy(probs, targets, rows, vocab);
        float[] dlogits = new float[rows * vocab];
        CPU.crossEntropyBackward(dlogits, probs, targets, rows, vocab, 1f / rows);

        FloatArray device = f(logits);
        IntArray t = i(targets);
        FloatArray losses = new FloatArray(rows);
        run(g -> g.task("ce", BackwardKernels::crossEntropy, device, t, losses, rows, vocab), in(device, t), device, losses);
        assertEquals(loss, mean(losses), 1e-5, "loss");
        close(probs, device, "probabilities");
        run(g -> g.task("dce", BackwardKernels::crossEntropyBackward, device, t, rows, vocab, 1f / rows), in(device, t), device);
        close(dlogits, device, "dlogits");
    }

    @Test
    void binaryCrossEntropyAndItsGradient() throws Exception {
        int rows = 9;
        float[] z = random(rows, 3);
        z[0] = 40f;
        z[1] = -40f;
        int[] y = ints(rows, 2, 4);
        float[] dz = random(rows, 5);
        float[] expected = dz.clone();
        double loss = CPU.binaryCrossEntropy(expected, z, y, rows, 0.7f);

        FloatArray dzDevice = f(dz);
        FloatArray zDevice = f(z);
        IntArray yDevice = i(y);
        FloatArray losses = new FloatArray(rows);
        run(g -> g.task("bce", BackwardKernels::binaryCrossEntropy, zDevice, yDevice, dzDevice, losses, rows, 0.7f),
                in(zDevice, yDevice, dzDevice), dzDevice, losses);
        assertEquals(loss, mean(losses), 1e-5, "loss");
        close(expected, dzDevice, "dz");
    }

    @Test
    void rmsnormGradients() throws Exception {
        int rows = 5;
        int d = 37;
        float[] x = random(rows * d, 6);
        float[] w = random(d, 7);
        float[] dout = random(rows * d, 8);
        float[] dx = random(rows * d, 9);
        float[] dw = random(d, 10);
        float[] dxWant = dx.clone();
        float[] dwWant = dw.clone();
        CPU.rmsnormBackward(dxWant, dwWant, dout, x, w, rows, d, 1e-5);

        FloatArray xd = f(x);
        FloatArray wd = f(w);
        FloatArray doutd = f(dout);
        FloatArray dxd = f(dx);
        FloatArray dwd = f(dw);
        FloatArray rstd = new FloatArray(rows);
        run(g -> g.task("rstd", BackwardKernels::rmsnormRstd, xd, rstd, rows, d, 1e-5f)
                        .task("dx", BackwardKernels::rmsnormBackward, dxd, doutd, xd, wd, rstd, rows, d)
                        .task("dw", BackwardKernels::rmsnormWeightGrad, dwd, doutd, xd, rstd, rows, d),
                in(xd, wd, doutd, dxd, dwd), dxd, dwd);
        close(dxWant, dxd, "dx");
        close(dwWant, dwd, "dw");
    }

    @Test
    void swigluAndItsGradient() throws Exception {
        int n = 77;
        float[] gate = random(n, 11);
        float[] up = random(n, 12);
        float[] ds = random(n, 13);
        float[] s = new float[n];
        CPU.swiglu(s, gate, up, n);
        float[] dg = new float[n];
        float[] du = new float[n];
        CPU.swigluBackward(dg, du, ds, gate, up, n);

        FloatArray g0 = f(gate);
        FloatArray u0 = f(up);
        FloatArray ds0 = f(ds);
        FloatArray s0 = new FloatArray(n);
        FloatArray dg0 = new FloatArray(n);
        FloatArray du0 = new FloatArray(n);
        run(g -> g.task("swiglu", BackwardKernels::swiglu, g0, u0, s0, n)
                        .task("dswiglu", BackwardKernels::swigluBackward, ds0, g0, u0, dg0, du0, n),
                in(g0, u0, ds0), s0, dg0, du0);
        close(s, s0, "s");
        close(dg, dg0, "dg");
        close(du, du0, "du");
    }

    @Test
    void embeddingGradientAddsEveryRowOfAToken() throws Exception {
        int rows = 12;
        int vocab = 7;
        int d = 5;
        int[] tokens = ints(rows, 4, 14);
        float[] dx = random(rows * d, 15);
        float[] demb = random(vocab * d, 16);
        float[] want = demb.clone();
        CPU.embedBackward(want, dx, tokens, rows, d);

        FloatArray dembd = f(demb);
        FloatArray dxd = f(dx);
        IntArray t = i(tokens);
        run(g -> g.task("demb", BackwardKernels::embedBackward, dembd, dxd, t, rows, vocab, d), in(dembd, dxd, t), dembd);
        close(want, dembd, "demb");
    }

    @ParameterizedTest
    @EnumSource(RouterWeighting.class)
    void routedLayerGradients(RouterWeighting weighting) throws Exception {
        int batch = 2;
        int seqLen = 7;
        int k = 3;
        int d = 6;
        int rows = batch * seqLen;
        int[] sel = {0, 3, 6, 1, 2, 5};
        float[] r = random(rows, 17);
        float[] f = random(batch * k * d, 18);
        float[] dx = random(rows * d, 19);
        float[] dr = random(rows, 20);
        float[] dxs = random(batch * k * d, 21);
        float[] x = random(rows * d, 22);
        float[] w = random(d, 23);
        float[] dw = random(d, 24);

        float[] dfWant = new float[batch * k * d];
        float[] drWant = dr.clone();
        CPU.scatterBackward(dfWant, drWant, dx, f, sel, r, weighting, batch, seqLen, k, d);
        float[] dxWant = dx.clone();
        CPU.gatherBackward(dxWant, dxs, sel, batch, seqLen, k, d);
        float[] dwWant = dw.clone();
        CPU.routerLogitsBackward(dxWant, dwWant, drWant, x, w, rows, d);

        FloatArray df0 = new FloatArray(batch * k * d);
        FloatArray dr0 = f(dr);
        FloatArray dx0 = f(dx);
        FloatArray f0 = f(f);
        IntArray sel0 = i(sel);
        FloatArray r0 = f(r);
        FloatArray dxs0 = f(dxs);
        FloatArray x0 = f(x);
        FloatArray w0 = f(w);
        FloatArray dw0 = f(dw);
        int sigmoid = weighting == RouterWeighting.SIGMOID ? 1 : 0;
        run(g -> g.task("scatter", BackwardKernels::scatterBackward, df0, dr0, dx0, f0, sel0, r0, batch, seqLen, k, d, sigmoid)
                        .task("gather", BackwardKernels::gatherBackward, dx0, dxs0, sel0, batch, seqLen, k, d)
                        .task("routerX", BackwardKernels::routerBackwardInput, dx0, dr0, w0, rows, d)
                        .task("routerW", BackwardKernels::routerBackwardWeight, dw0, dr0, x0, rows, d),
                in(df0, dr0, dx0, f0, sel0, r0, dxs0, x0, w0, dw0), df0, dr0, dx0, dw0);
        close(dfWant, df0, "df");
        close(drWant, dr0, "dr");
        close(dxWant, dx0, "dx");
        close(dwWant, dw0, "dw");
    }

    @Test
    void causalAttentionAndItsGradientsWithGroupedKeys() throws Exception {
        int batch = 2;
        int n = 7;
        int heads = 4;
        int kvHeads = 2;
        int dh = 8;
        float[] q = random(batch * n * heads * dh, 25);
        float[] k = random(batch * n * kvHeads * dh, 26);
        float[] v = random(batch * n * kvHeads * dh, 27);
        float[] dout = random(batch * n * heads * dh, 28);
        float[] out = new float[q.length];
        float[] lse = new float[batch * heads * n];
        CPU.attention(out, lse, q, k, v, batch, n, heads, kvHeads, dh);
        float[] dq = new float[q.length];
        float[] dk = new float[k.length];
        float[] dv = new float[v.length];
        CPU.attentionBackward(dq, dk, dv, dout, out, lse, q, k, v, batch, n, heads, kvHeads, dh);

        FloatArray q0 = f(q);
        FloatArray k0 = f(k);
        FloatArray v0 = f(v);
        FloatArray dout0 = f(dout);
        FloatArray out0 = new FloatArray(q.length);
        FloatArray lse0 = new FloatArray(lse.length);
        FloatArray dq0 = new FloatArray(q.length);
        FloatArray dk0 = new FloatArray(k.length);
        FloatArray dv0 = new FloatArray(v.length);
        run(g -> g.task("attention", BackwardKernels::attention, q0, k0, v0, out0, lse0, batch, n, heads, kvHeads, dh)
                        .task("dq", BackwardKernels::attentionBackwardQuery, dq0, dout0, q0, k0, v0, out0, lse0, batch, n, heads,
                                kvHeads, dh)
                        .task("dkv", BackwardKernels::attentionBackwardKeyValue, dk0, dv0, dout0, q0, k0, v0, out0, lse0, batch, n,
                                heads, kvHeads, dh),
                in(q0, k0, v0, dout0), out0, lse0, dq0, dk0, dv0);
        close(out, out0, "out");
        close(lse, lse0, "lse");
        close(dq, dq0, "dq");
        close(dk, dk0, "dk");
        close(dv, dv0, "dv");
    }

    @Test
    void productsAndTheirGradients() throws Exception {
        int rows = 5;
        int in = 9;
        int out = 7;
        float[] x = random(rows * in, 40);
        float[] w = random(out * in, 41);
        float[] dout = random(rows * out, 42);
        float[] dx = random(rows * in, 43);
        TrainingKernels.Matrix weight = CPU.matrix(out, in);
        CPU.load(weight, w);
        float[] y = new float[rows * out];
        CPU.matmul(y, x, weight, rows);
        float[] dxWritten = new float[rows * in];
        CPU.matmulBackwardInput(dxWritten, dout, weight, rows);
        float[] dxAdded = dx.clone();
        CPU.matmulBackwardInputAdd(dxAdded, dout, weight, rows);
        float[] dw = new float[out * in];
        CPU.matmulBackwardWeight(dw, dout, x, rows, out, in);

        FloatArray x0 = f(x);
        FloatArray w0 = f(w);
        FloatArray dout0 = f(dout);
        FloatArray y0 = new FloatArray(rows * out);
        FloatArray written0 = new FloatArray(rows * in);
        FloatArray added0 = f(dx);
        FloatArray dw0 = new FloatArray(out * in);
        run(g -> g.task("y", BackwardKernels::matmul, x0, w0, y0, rows, in, out)
                        .task("dxWritten", BackwardKernels::matmulBackwardInput, dout0, w0, written0, rows, in, out, 0)
                        .task("dxAdded", BackwardKernels::matmulBackwardInput, dout0, w0, added0, rows, in, out, 1)
                        .task("dw", BackwardKernels::matmulBackwardWeight, dout0, x0, dw0, rows, in, out),
                in(x0, w0, dout0, added0), y0, written0, added0, dw0);
        close(y, y0, "y");
        close(dxWritten, written0, "dx");
        close(dxAdded, added0, "dx +=");
        close(dw, dw0, "dw");
    }

    @Test
    void rmsnormTheForwardsRopeAndTheRoutedLayersForwardKernels() throws Exception {
        int batch = 2;
        int seqLen = 6;
        int k = 2;
        int d = 8;
        int heads = 2;
        int dh = 4;
        int rows = batch * seqLen;
        float[] x = random(rows * d, 44);
        float[] w = random(d, 45);
        float[] normed = new float[rows * d];
        CPU.rmsnorm(normed, x, w, rows, d, 1e-5);
        int[] pos = ints(rows, seqLen, 46);
        float[] cos = new float[seqLen * dh / 2];
        float[] sin = new float[seqLen * dh / 2];
        dev.mod.model.Rope.fill(cos, sin, 10000, dh, 0, seqLen);
        float[] rotated = x.clone();
        CPU.rope(rotated, pos, cos, sin, rows, heads, dh);
        int[] sel = {1, 4, 0, 5};
        float[] r = random(rows, 47);
        float[] xs = new float[batch * k * d];
        CPU.gather(xs, x, sel, batch, seqLen, k, d);
        float[] f = random(batch * k * d, 48);
        float[] scattered = x.clone();
        CPU.scatter(scattered, f, sel, r, RouterWeighting.SIGMOID, batch, seqLen, k, d);

        FloatArray x0 = f(x);
        FloatArray w0 = f(w);
        FloatArray rstd0 = new FloatArray(rows);
        FloatArray normed0 = new FloatArray(rows * d);
        IntArray pos0 = i(pos);
        FloatArray cos0 = f(cos);
        FloatArray sin0 = f(sin);
        FloatArray rotated0 = f(x);
        IntArray sel0 = i(sel);
        FloatArray r0 = f(r);
        FloatArray xs0 = new FloatArray(batch * k * d);
        FloatArray f0 = f(f);
        FloatArray scattered0 = f(x);
        IntArray target0 = new IntArray(rows);
        run(g -> g.task("rstd", BackwardKernels::rmsnormRstd, x0, rstd0, rows, d, 1e-5f)
                        .task("norm", BackwardKernels::rmsnorm, x0, rstd0, w0, normed0, rows, d)
                        .task("rope", TornadoKernels::rope, rotated0, pos0, cos0, sin0, rows, heads, heads * dh, dh)
                        .task("gather", BackwardKernels::gather, x0, sel0, xs0, batch, seqLen, k, d)
                        .task("scatter", BackwardKernels::scatter, scattered0, f0, sel0, r0, batch, seqLen, k, d, 1)
                        .task("targets", BackwardKernels::topKTargets, sel0, target0, batch, seqLen, k),
                in(x0, w0, pos0, cos0, sin0, sel0, r0, f0, scattered0, rotated0), normed0, rotated0, xs0, scattered0, target0);
        close(normed, normed0, "rmsnorm");
        close(rotated, rotated0, "rope");
        close(xs, xs0, "gather");
        close(scattered, scattered0, "scatter");
        assertArrayEquals(new int[] {0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1}, target0.toHeapArray(), "top-k targets");
    }

    @Test
    void copyZeroAddAndMean() throws Exception {
        int n = 10;
        float[] a = random(n, 49);
        float[] b = random(n, 50);
        FloatArray a0 = f(a);
        FloatArray b0 = f(b);
        FloatArray copied = new FloatArray(n);
        FloatArray sum = new FloatArray(n);
        FloatArray zeroed = f(b);
        FloatArray means = new FloatArray(3);
        means.init(7f);
        run(g -> g.task("copy", BackwardKernels::copy, a0, copied, n)
                        .task("add", BackwardKernels::add, a0, b0, sum, n)
                        .task("zero", BackwardKernels::zero, zeroed, n)
                        .task("mean", BackwardKernels::mean, a0, means, n, 1),
                in(a0, b0, zeroed, means), copied, sum, zeroed, means);
        float[] added = new float[n];
        double total = 0;
        for (int k = 0; k < n; k++) {
            added[k] = a[k] + b[k];
            total += a[k];
        }
        close(a, copied, "copy");
        close(added, sum, "add");
        close(new float[n], zeroed, "zero");
        close(new float[] {7f, (float) (total / n), 7f}, means, "mean in its slot only");
    }

    @Test
    void clippingAndAdamWFollowTheCpuOptimizer() throws Exception {
        // tensors longer than a norm block and not whole blocks; matrices decayed, norms and the router's vector not
        Parameters params = Parameters.of(ModelInit.random(new ModelConfig(70, 48, 2, 4, 2, 72, 1e-5, 10000, 16, 0.5,
                List.of(1), RouterWeighting.SIGMOID), 32));
        Parameters grads = params.zerosLike();
        long seed = 33;
        for (String name : grads.names()) {
            float[] g = random(grads.get(name).length, seed++);
            System.arraycopy(g, 0, grads.get(name), 0, g.length);
        }
        Map<String, FloatArray> p0 = new LinkedHashMap<>();
        Map<String, FloatArray> g0 = new LinkedHashMap<>();
        for (String name : params.names()) {
            p0.put(name, f(params.get(name)));
            g0.put(name, f(grads.get(name)));
        }
        double norm = CPU.clip(grads, 10.0);
        AdamW adam = new AdamW(params, 0.1);
        CPU.update(adam, params, grads, 1e-2);

        int blocks = 0;
        for (FloatArray g : g0.values()) {
            blocks += (g.getSize() + BackwardKernels.NORM_BLOCK - 1) / BackwardKernels.NORM_BLOCK;
        }
        FloatArray partial = new FloatArray(blocks);
        FloatArray hyper = FloatArray.fromArray(new float[] {1e-2f, (float) (1 - AdamW.BETA1), (float) (1 - AdamW.BETA2), 10f});
        FloatArray norm0 = new FloatArray(2);
        int offset = 0;
        for (FloatArray g : g0.values()) {
            int n = g.getSize();
            int at = offset;
            run(t -> t.task("squares", BackwardKernels::sumSquares, g, partial, n, at), in(g, partial), partial);
            offset += (n + BackwardKernels.NORM_BLOCK - 1) / BackwardKernels.NORM_BLOCK;
        }
        int count = offset;
        run(t -> t.task("factor", BackwardKernels::clipFactor, partial, hyper, norm0, count), in(partial, hyper), norm0);
        assertEquals(norm, norm0.get(0), 1e-5 * norm, "global norm");
        assertTrue(norm > 10, "the gradients should need clipping, norm " + norm);
        assertEquals(10.0 / norm, norm0.get(1), 1e-5, "clipping factor");
        AdamW decays = new AdamW(params, 0.1);
        for (String name : params.names()) {
            FloatArray g = g0.get(name);
            FloatArray p = p0.get(name);
            int n = g.getSize();
            FloatArray m = new FloatArray(n);
            FloatArray v = new FloatArray(n);
            m.init(0f);
            v.init(0f);
            float decay = (float) decays.decay(name, params.shape(name));
            run(t -> t.task("clip", BackwardKernels::scale, g, norm0, n)
                            .task("adamw", BackwardKernels::adamW, p, g, m, v, hyper, n, decay),
                    in(g, p, m, v, norm0, hyper), g, p, m, v);
            close(grads.get(name), g, name + " clipped");
            close(params.get(name), p, name);
            close(adam.m().get(name), m, name + " first moment");
            close(adam.v().get(name), v, name + " second moment");
        }
    }
}
