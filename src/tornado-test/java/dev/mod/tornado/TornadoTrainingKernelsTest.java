package dev.mod.tornado;

import dev.mod.OclgrindLogCheck;
import dev.mod.cpu.CpuTrainingKernels;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.Rng;
import dev.mod.model.Rope;
import dev.mod.model.RouterWeighting;
import dev.mod.train.AdamW;
import dev.mod.train.Parameters;
import dev.mod.train.TrainingKernels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.BiConsumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Training's device kernels (ArenaKernels, through TornadoTrainingKernels: traced, laid out in the arena, run as a
 * task graph) on TornadoVM's default device against the cpu backend's training kernels, whose every backward twin
 * is checked against finite differences (TrainKernelsGradientTest): the same values within float rounding, the same
 * integers exactly, on small shapes with partial blocks, GQA and both router weightings.
 */
@ExtendWith(OclgrindLogCheck.class)
class TornadoTrainingKernelsTest {
    private static final CpuTrainingKernels CPU = new CpuTrainingKernels(2);

    @AfterAll
    static void close() {
        CPU.close();
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

    private static Object[] copies(Object[] arrays) {
        Object[] c = new Object[arrays.length];
        for (int i = 0; i < arrays.length; i++) {
            c[i] = switch (arrays[i]) {
                case float[] f -> f.clone();
                case double[] d -> d.clone();
                default -> ((int[]) arrays[i]).clone();
            };
        }
        return c;
    }

    /**
     * Runs op on the cpu kernels and on the tornado kernels (traced, then run once in one section), each on its own copy of
     * the arrays, and checks every array after it: floats within 1e-5 of the largest expected magnitude (at least 1), as
     * sums in another order give, integers exactly. Returns the cpu's arrays.
     */
    private static Object[] same(Object[] arrays, BiConsumer<TrainingKernels, Object[]> op) {
        Object[] cpu = copies(arrays);
        op.accept(CPU, cpu);
        Object[] device = copies(arrays);
        try (TornadoTrainingKernels k = new TornadoTrainingKernels(null, 64, false)) {
            k.trace(() -> {
                k.section("op");
                op.accept(k, device);
            });
            k.section("op");
            op.accept(k, device);
            for (Object a : device) {
                switch (a) {
                    case float[] f -> k.download(f);
                    case double[] d -> k.download(d);
                    default -> k.download((int[]) a);
                }
            }
        }
        for (int i = 0; i < arrays.length; i++) {
            if (cpu[i] instanceof float[] want) {
                float[] got = (float[]) device[i];
                double largest = 1;
                for (float e : want) {
                    largest = Math.max(largest, Math.abs(e));
                }
                for (int j = 0; j < want.length; j++) {
                    assertEquals(want[j], got[j], 1e-5 * largest, "array " + i + " [" + j + "]");
                }
            } else if (cpu[i] instanceof double[] want) {
                assertArrayEquals(want, (double[]) device[i], 1e-5 * Math.max(1, Arrays.stream(want).map(Math::abs).max().orElse(0)),
                        "array " + i);
            } else {
                assertArrayEquals((int[]) cpu[i], (int[]) device[i], "array " + i);
            }
        }
        return cpu;
    }

    @Test
    void crossEntropyAndItsGradient() {
        int rows = 6;
        int vocab = 11;
        Object[] cpu = same(new Object[] {new double[3], random(rows * vocab, 1), ints(rows, vocab, 2), new float[rows * vocab]}, (k, a) -> {
            k.crossEntropy((double[]) a[0], 1, (float[]) a[1], (int[]) a[2], rows, vocab);
            k.crossEntropyBackward((float[]) a[3], (float[]) a[1], (int[]) a[2], rows, vocab, 1f / rows);
        });
        double[] losses = (double[]) cpu[0];
        assertTrue(losses[1] > 0 && losses[0] == 0 && losses[2] == 0, "the loss in its slot only");
    }

    @Test
    void binaryCrossEntropyAndItsGradient() {
        int rows = 9;
        float[] z = random(rows, 3);
        z[0] = 40f;
        z[1] = -40f;
        same(new Object[] {new double[2], z, ints(rows, 2, 4), random(rows, 5)}, (k, a) -> {
            k.binaryCrossEntropy((double[]) a[0], 0, (float[]) a[1], (int[]) a[2], rows);
            k.binaryCrossEntropyBackward((float[]) a[3], (float[]) a[1], (int[]) a[2], rows, 0.7f);
        });
    }

    @Test
    void rmsnormAndItsGradients() {
        int rows = 5;
        int d = 37;
        same(new Object[] {random(rows * d, 6), random(d, 7), random(rows * d, 8), random(rows * d, 9), random(d, 10),
                new float[rows * d]}, (k, a) -> {
            k.rmsnorm((float[]) a[5], (float[]) a[0], (float[]) a[1], rows, d, 1e-5);
            k.rmsnormBackward((float[]) a[3], (float[]) a[4], (float[]) a[2], (float[]) a[0], (float[]) a[1], rows, d, 1e-5);
        });
    }

    @Test
    void swigluAndItsGradient() {
        int n = 77;
        same(new Object[] {random(n, 11), random(n, 12), random(n, 13), new float[n], new float[n], new float[n]}, (k, a) -> {
            k.swiglu((float[]) a[3], (float[]) a[0], (float[]) a[1], n);
            k.swigluBackward((float[]) a[4], (float[]) a[5], (float[]) a[2], (float[]) a[0], (float[]) a[1], n);
        });
    }

    @Test
    void embeddingAndItsGradientAddingEveryRowOfAToken() {
        int rows = 12;
        int vocab = 7;
        int d = 5;
        same(new Object[] {ints(rows, 4, 14), random(rows * d, 15), random(vocab * d, 16), new float[rows * d]}, (k, a) -> {
            k.embed((float[]) a[3], (int[]) a[0], (float[]) a[2], rows, d);
            k.embedBackward((float[]) a[2], (float[]) a[1], (int[]) a[0], rows, d);
        });
    }

    @ParameterizedTest
    @EnumSource(RouterWeighting.class)
    void routedLayerAndItsGradients(RouterWeighting weighting) {
        int batch = 2;
        int seqLen = 7;
        int k = 3;
        int d = 6;
        int rows = batch * seqLen;
        Object[] cpu = same(new Object[] {new int[batch * k], random(rows, 17), random(batch * k * d, 18), random(rows * d, 19),
                random(rows, 20), random(batch * k * d, 21), random(rows * d, 22), random(d, 23), random(d, 24),
                new float[batch * k * d], new int[rows], new float[rows], new float[batch * k * d]}, (kernels, a) -> {
            int[] sel = (int[]) a[0];
            float[] r = (float[]) a[1];
            kernels.routerLogits((float[]) a[11], (float[]) a[6], (float[]) a[7], rows, d);
            kernels.select(sel, r, batch, seqLen, k);
            kernels.topKTargets((int[]) a[10], sel, batch, seqLen, k);
            kernels.gather((float[]) a[12], (float[]) a[6], sel, batch, seqLen, k, d);
            kernels.scatter((float[]) a[6], (float[]) a[2], sel, r, weighting, batch, seqLen, k, d);
            kernels.scatterBackward((float[]) a[9], (float[]) a[4], (float[]) a[3], (float[]) a[2], sel, r, weighting, batch, seqLen, k, d);
            kernels.gatherBackward((float[]) a[3], (float[]) a[5], sel, batch, seqLen, k, d);
            kernels.routerLogitsBackward((float[]) a[3], (float[]) a[8], (float[]) a[4], (float[]) a[6], (float[]) a[7], rows, d);
        });
        int picked = 0;
        for (int t : (int[]) cpu[10]) {
            picked += t;
        }
        assertEquals(batch * k, picked, "top-k targets mark k tokens a sequence");
    }

    @Test
    void causalAttentionAndItsGradientsWithGroupedKeys() {
        int batch = 2;
        int n = 7;
        int heads = 4;
        int kvHeads = 2;
        int dh = 8;
        int q = batch * n * heads * dh;
        int kv = batch * n * kvHeads * dh;
        same(new Object[] {random(q, 25), random(kv, 26), random(kv, 27), random(q, 28), new float[q], new float[batch * heads * n],
                new float[q], new float[kv], new float[kv]}, (k, a) -> {
            float[] out = (float[]) a[4];
            float[] lse = (float[]) a[5];
            k.attention(out, lse, (float[]) a[0], (float[]) a[1], (float[]) a[2], batch, n, heads, kvHeads, dh);
            k.attentionBackward((float[]) a[6], (float[]) a[7], (float[]) a[8], (float[]) a[3], out, lse, (float[]) a[0], (float[]) a[1],
                    (float[]) a[2], batch, n, heads, kvHeads, dh);
        });
    }

    /** Runs body with tornado-config's mod.tornado.matmul set to layout (the tiled layout forced on a CPU device). */
    static void withProducts(String layout, Runnable body) {
        System.setProperty("mod.tornado.matmul", layout);
        try {
            body.run();
        } finally {
            System.clearProperty("mod.tornado.matmul");
        }
    }

    // partial tiles and k steps: rows, in and out below, at and past the tiled layout's 64 and 16
    @ParameterizedTest
    @CsvSource({"rows, 5, 9, 7", "tiled, 5, 9, 7", "tiled, 70, 33, 65", "tiled, 64, 16, 128"})
    void productsAndTheirGradients(String layout, int rows, int in, int out) {
        withProducts(layout, () -> same(new Object[] {random(rows * in, 40), random(out * in, 41), random(rows * out, 42), random(rows * in, 43),
                new float[rows * out], new float[rows * in], new float[out * in], new float[out * in]}, (k, a) -> {
            TrainingKernels.Matrix w = k.matrix(out, in);
            k.load(w, (float[]) a[1]);
            k.matmul((float[]) a[4], (float[]) a[0], w, rows);
            k.matmulBackwardInput((float[]) a[5], (float[]) a[2], w, rows);
            k.matmulBackwardInputAdd((float[]) a[3], (float[]) a[2], w, rows);
            k.matmulBackwardWeight((float[]) a[6], (float[]) a[2], (float[]) a[0], rows, out, in);
            k.matmulBackwardWeight((float[]) a[7], (float[]) a[2], k.activations((float[]) a[0], rows, in), rows, out);
        }));
    }

    @Test
    void ropeBothWaysAndTheElementwiseKernels() {
        int rows = 12;
        int heads = 2;
        int dh = 4;
        int seqLen = 6;
        float[] cos = new float[seqLen * dh / 2];
        float[] sin = new float[seqLen * dh / 2];
        Rope.fill(cos, sin, 10000, dh, 0, seqLen);
        float[] back = sin.clone();
        for (int i = 0; i < back.length; i++) {
            back[i] = -back[i];
        }
        int n = rows * heads * dh;
        Object[] cpu = same(new Object[] {random(n, 44), ints(rows, seqLen, 46), cos, sin, back, random(n, 45), new float[n], new float[n],
                random(n, 47)}, (k, a) -> {
            float[] x = (float[]) a[0];
            k.copy((float[]) a[6], x, n);
            k.rope(x, (int[]) a[1], (float[]) a[2], (float[]) a[3], rows, heads, dh);
            k.add((float[]) a[7], x, (float[]) a[5], n);
            k.rope(x, (int[]) a[1], (float[]) a[2], (float[]) a[4], rows, heads, dh);
            k.zero((float[]) a[8], n - 3);
        });
        float[] x = (float[]) cpu[0];
        float[] original = (float[]) cpu[6];
        for (int i = 0; i < n; i++) {
            assertEquals(original[i], x[i], 1e-5, "RoPE and its backward cancel at " + i);
        }
        assertTrue(((float[]) cpu[8])[n - 1] != 0, "zero leaves what lies past its length");
    }

    @Test
    void predictorOutputAndItsGradientsAndTheControlsScores() {
        int rows = 10;
        int p = 6;
        Object[] cpu = same(new Object[] {new float[rows], random(rows * p, 50), random(p, 51), random(rows, 52), new float[rows * p],
                random(p, 53), new float[rows], new float[rows], new float[rows], new float[rows]}, (k, a) -> {
            k.predictorLogits((float[]) a[0], (float[]) a[1], (float[]) a[2], rows, p);
            k.predictorLogitsBackward((float[]) a[4], (float[]) a[5], (float[]) a[3], (float[]) a[1], (float[]) a[2], rows, p);
            k.uniformScores((float[]) a[6], -7, 3, rows);
            k.uniformScores((float[]) a[7], 1L << 40, 1, rows);
            k.gaussianScores((float[]) a[8], -7, 3, rows);
            k.gaussianScores((float[]) a[9], 1L << 40, 1, rows);
        });
        for (float u : (float[]) cpu[6]) {
            assertTrue(u >= 0 && u < 1, "a uniform score in [0, 1): " + u);
        }
        for (int t = 0; t < rows; t++) {
            assertEquals(Rng.gaussian(-7, 3, t), ((float[]) cpu[8])[t], "the cpu's samples are Rng.gaussian's");
        }
    }

    @Test
    void clippingAndAdamWFollowTheCpuOptimizer() {
        // tensors longer than a norm block and not whole blocks; matrices decayed, norms and the router's vector not
        ModelConfig config = new ModelConfig(70, 48, 2, 4, 2, 72, 1e-5, 10000, 16, 0.5, List.of(1), RouterWeighting.SIGMOID);
        Parameters[] params = new Parameters[2];
        Parameters[] grads = new Parameters[2];
        AdamW[] adam = new AdamW[2];
        for (int i = 0; i < 2; i++) {
            params[i] = Parameters.of(ModelInit.random(config, 32));
            grads[i] = params[i].zerosLike();
            long seed = 33;
            for (String name : grads[i].names()) {
                float[] g = random(grads[i].get(name).length, seed++);
                System.arraycopy(g, 0, grads[i].get(name), 0, g.length);
            }
            adam[i] = new AdamW(params[i], 0.1);
        }
        double norm = CPU.clip(grads[0], 10.0);
        CPU.update(adam[0], params[0], grads[0], 1e-2);
        assertTrue(norm > 10, "the gradients should need clipping, norm " + norm);
        double deviceNorm;
        try (TornadoTrainingKernels k = new TornadoTrainingKernels(null, 64, false)) {
            Runnable step = () -> {
                k.section("clip");
                k.clip(grads[1], 10.0);
                k.section("update");
                k.update(adam[1], params[1], grads[1], 1e-2);
            };
            k.trace(step);
            k.section("clip");
            deviceNorm = k.clip(grads[1], 10.0);
            k.section("update");
            k.update(adam[1], params[1], grads[1], 1e-2);
            for (String name : params[1].names()) {
                k.download(params[1].get(name));
                k.download(grads[1].get(name));
                k.download(adam[1].m().get(name));
                k.download(adam[1].v().get(name));
            }
        }
        assertEquals(norm, deviceNorm, 1e-5 * norm, "global norm");
        assertEquals(adam[0].step(), adam[1].step(), "steps");
        for (String name : params[0].names()) {
            assertArrayEquals(grads[0].get(name), grads[1].get(name), 1e-5f, name + " clipped");
            assertArrayEquals(params[0].get(name), params[1].get(name), 1e-5f, name);
            assertArrayEquals(adam[0].m().get(name), adam[1].m().get(name), 1e-5f, name + " first moment");
            assertArrayEquals(adam[0].v().get(name), adam[1].v().get(name), 1e-5f, name + " second moment");
        }
    }

    @Test
    void aStepThatChangesAfterItsTraceIsRefused() {
        float[] a = random(8, 60);
        float[] b = new float[8];
        try (TornadoTrainingKernels k = new TornadoTrainingKernels(null, 8, false)) {
            k.trace(() -> {
                k.section("op");
                k.copy(b, a, 8);
            });
            k.section("op");
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> k.copy(a, b, 8));
            assertTrue(e.getMessage().contains("changed after it was traced"), e.getMessage());
        }
    }
}
