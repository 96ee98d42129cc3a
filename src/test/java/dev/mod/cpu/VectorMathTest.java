package dev.mod.cpu;

import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class VectorMathTest {
    @Test
    void expIsAccurateAndTheVectorAndScalarFormsAgreeBitForBit() {
        int lanes = VectorMath.S.length();
        float[] x = new float[lanes];
        float[] y = new float[lanes];
        double worst = 0;
        for (float start = -80f; start < 80f; start += 0.37f * lanes) {
            for (int i = 0; i < lanes; i++) {
                x[i] = start + 0.37f * i;
            }
            VectorMath.exp(FloatVector.fromArray(VectorMath.S, x, 0)).intoArray(y, 0);
            for (int i = 0; i < lanes; i++) {
                assertEquals(Float.floatToRawIntBits(VectorMath.exp(x[i])), Float.floatToRawIntBits(y[i]), "x = " + x[i]);
                double exact = Math.exp(x[i]);
                worst = Math.max(worst, Math.abs(y[i] - exact) / exact);
            }
        }
        assertTrue(worst < 3e-7, "relative error " + worst);
        assertEquals(0f, VectorMath.exp(-1000f), 1e-37f);
        assertTrue(Float.isFinite(VectorMath.exp(1000f)));
    }

    @Test
    void sumAddsTheLanesInOrder() {
        float[] x = new float[VectorMath.S.length()];
        x[0] = 1e8f;
        x[1] = 1f;
        x[x.length - 1] = -1e8f;
        float expected = 0;
        for (float v : x) {
            expected += v;
        }
        assertEquals(expected, VectorMath.sum(FloatVector.fromArray(VectorMath.S, x, 0)));
    }
}
