package dev.mod.train;

import dev.mod.cpu.CpuTrainingKernels;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.RouterWeighting;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The optimizer against double-precision transcriptions of its formulas. */
class AdamWTest {
    /** Tensors longer than a segment and not whole blocks or vectors (258 x 296 embeddings), a router vector. */
    private static final ModelConfig CONFIG = new ModelConfig(258, 296, 2, 4, 2, 100, 1e-5, 10000, 64, 0.25,
            List.of(1), RouterWeighting.RAW);
    /** The cpu backend's AdamW step and clipping. */
    private static final CpuTrainingKernels KERNELS = new CpuTrainingKernels(2);

    @AfterAll
    static void closeKernels() {
        KERNELS.close();
    }

    private static Parameters randomGradients(Parameters params, long seed) {
        Parameters g = params.zerosLike();
        SplittableRandom random = new SplittableRandom(seed);
        for (String name : g.names()) {
            float[] a = g.get(name);
            for (int i = 0; i < a.length; i++) {
                a[i] = (float) random.nextGaussian();
            }
        }
        return g;
    }

    private static double norm(Parameters g) {
        double sum = 0;
        for (String name : g.names()) {
            for (float x : g.get(name)) {
                sum += (double) x * x;
            }
        }
        return Math.sqrt(sum);
    }

    @Test
    void clipReturnsTheGlobalNormAndScalesDownToTheLimit() {
        Parameters params = Parameters.of(ModelInit.random(CONFIG, 1));
        Parameters g = randomGradients(params, 2);
        double expected = norm(g);
        AdamW adam = new AdamW(params, 0.1);
        Parameters unclipped = randomGradients(params, 2);
        assertEquals(expected, KERNELS.clip(unclipped, 2 * expected), 1e-6 * expected);
        for (String name : g.names()) {
            assertArrayEquals(g.get(name), unclipped.get(name), 0f, name + " changed under a limit above the norm");
        }
        assertEquals(expected, KERNELS.clip(g, 0.25 * expected), 1e-6 * expected);
        assertEquals(0.25 * expected, norm(g), 1e-5 * expected);
    }

    @Test
    void updateFollowsAdamWithBiasCorrectionAndDecoupledDecayOnMatricesOnly() {
        Parameters params = Parameters.of(ModelInit.random(CONFIG, 3));
        Parameters start = Parameters.of(ModelInit.random(CONFIG, 3));
        double decay = 0.1;
        double lr = 1e-2;
        AdamW adam = new AdamW(params, decay);
        Parameters g1 = randomGradients(params, 4);
        Parameters g2 = randomGradients(params, 5);
        KERNELS.update(adam, params, g1, lr);
        KERNELS.update(adam, params, g2, lr);
        assertEquals(2, adam.step());
        for (String name : params.names()) {
            boolean matrix = params.shape(name).length == 2 && !name.endsWith("router.weight");
            float[] p = start.get(name);
            for (int i = 0; i < p.length; i += 7) {
                double x = p[i];
                double m = 0;
                double v = 0;
                float[][] grads = {g1.get(name), g2.get(name)};
                for (int t = 1; t <= 2; t++) {
                    double gi = grads[t - 1][i];
                    m = 0.9 * m + 0.1 * gi;
                    v = 0.95 * v + 0.05 * gi * gi;
                    double mHat = m / (1 - Math.pow(0.9, t));
                    double vHat = v / (1 - Math.pow(0.95, t));
                    x -= lr * (mHat / (Math.sqrt(vHat) + 1e-8) + (matrix ? decay * x : 0));
                }
                assertEquals(x, params.get(name)[i], 1e-5 * Math.max(1, Math.abs(x)), name + "[" + i + "]");
            }
        }
    }

    @Test
    void learningRateWarmsUpLinearlyThenFollowsACosineToItsFloor() {
        assertEquals(0.1, AdamW.learningRate(0, 1.0, 10, 110, 0.1), 1e-12);
        assertEquals(1.0, AdamW.learningRate(9, 1.0, 10, 110, 0.1), 1e-12);
        assertEquals(1.0, AdamW.learningRate(10, 1.0, 10, 110, 0.1), 1e-12);
        assertEquals(0.55, AdamW.learningRate(60, 1.0, 10, 110, 0.1), 1e-12);
        assertEquals(0.1, AdamW.learningRate(110, 1.0, 10, 110, 0.1), 1e-12);
        assertTrue(AdamW.learningRate(200, 1.0, 10, 110, 0.1) >= 0.1);
    }
}
