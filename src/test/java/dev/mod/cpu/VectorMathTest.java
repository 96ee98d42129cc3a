package dev.mod.cpu;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class VectorMathTest {
    @Test
    void expIsAccurateAndTheVectorAndScalarFormsAgreeBitForBit() {
        int n = 1000;
        float[] x = new float[n];
        float[] y = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = -80f + 0.16f * i;
        }
        VectorMath.exp(x, 0, y, 0, n, 1f, 0f);
        double worst = 0;
        for (int i = 0; i < n; i++) {
            assertEquals(Float.floatToRawIntBits(VectorMath.exp(x[i])), Float.floatToRawIntBits(y[i]), "x = " + x[i]);
            double exact = Math.exp(x[i]);
            worst = Math.max(worst, Math.abs(y[i] - exact) / exact);
        }
        assertTrue(worst < 3e-7, "relative error " + worst);
        assertEquals(0f, VectorMath.exp(-1000f), 1e-37f);
        assertTrue(Float.isFinite(VectorMath.exp(1000f)));
    }

    @Test
    void expAppliesScaleAndShift() {
        float[] x = {1, 2, 3};
        float[] y = new float[3];
        VectorMath.exp(x, 0, y, 0, 3, -2f, 1f);
        for (int i = 0; i < 3; i++) {
            assertEquals(Math.exp(-2.0 * x[i] - 1), y[i], 1e-7 * Math.exp(-2.0 * x[i] - 1));
        }
    }

    @Test
    void sumAndDotAddInAFixedOrderAndCoverTheTail() {
        int n = 37;
        float[] a = new float[n];
        float[] b = new float[n];
        double expectedSum = 0;
        double expectedDot = 0;
        for (int i = 0; i < n; i++) {
            a[i] = i * 0.5f;
            b[i] = 2 - i;
            expectedSum += a[i];
            expectedDot += (double) a[i] * b[i];
        }
        assertEquals(expectedSum, VectorMath.sum(a, 0, n), 1e-4);
        assertEquals(expectedDot, VectorMath.dot(a, 0, b, 0, n), 1e-3);
        assertEquals(VectorMath.sum(a, 0, n), VectorMath.sum(a.clone(), 0, n));
    }
}
