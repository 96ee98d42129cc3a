package dev.mod.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * exp, dot products and sums over array ranges, built from IEEE-exact operations only (add, multiply,
 * FMA, bit moves) and summed in a fixed order, so they give the same bits in the interpreter, in C2 and
 * on every thread. The Vector API's own EXP and reduceLanes(ADD) may differ between JIT tiers (the
 * latter's order is unspecified), which would make results depend on when a method got compiled.
 * Functions take arrays, never vectors: a vector passed to a method that is not inlined is boxed.
 */
public final class VectorMath {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();

    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    /** 1.5 * 2^23: adding it rounds a float of magnitude below 2^22 to an integer, kept in the low bits. */
    private static final float ROUND = 12582912f;
    private static final int ROUND_BITS = Float.floatToRawIntBits(ROUND);
    private static final float MAX_X = 88.3762626647949f;
    private static final float MIN_X = -87.3365447504019f;
    private static final float P0 = 1.9875691500e-4f;
    private static final float P1 = 1.3981999507e-3f;
    private static final float P2 = 8.3334519073e-3f;
    private static final float P3 = 4.1665795894e-2f;
    private static final float P4 = 1.6666665459e-1f;
    private static final float P5 = 5.0000001201e-1f;

    /** Lanes of a vector sum, parked so they can be added in lane order; one per thread. */
    private static final ThreadLocal<float[]> LANES = ThreadLocal.withInitial(() -> new float[L]);

    private VectorMath() {
    }

    // dst[dstFrom + i] = exp(scale * src[srcFrom + i] - shift), i < n (Cephes expf: x = k ln2 + r,
    // exp(r) by polynomial, times 2^k; about 1 ulp)
    public static void exp(float[] src, int srcFrom, float[] dst, int dstFrom, int n, float scale, float shift) {
        int i = 0;
        for (; i + L <= n; i += L) {
            FloatVector v = FloatVector.fromArray(S, src, srcFrom + i).mul(scale).sub(shift);
            // clamped by compare and blend: FloatVector.max/min keep Java's NaN and -0.0 rules at several
            // instructions each, which cost a third of this loop; a NaN stays a NaN either way
            FloatVector x = v.blend(MIN_X, v.lt(MIN_X));
            x = x.blend(MAX_X, x.compare(VectorOperators.GT, MAX_X));
            FloatVector t = x.fma(FloatVector.broadcast(S, LOG2E), FloatVector.broadcast(S, ROUND));
            FloatVector k = t.sub(ROUND);
            FloatVector r = k.fma(FloatVector.broadcast(S, -LN2_HI), x);
            r = k.fma(FloatVector.broadcast(S, -LN2_LO), r);
            FloatVector p = r.fma(FloatVector.broadcast(S, P0), FloatVector.broadcast(S, P1));
            p = p.fma(r, FloatVector.broadcast(S, P2));
            p = p.fma(r, FloatVector.broadcast(S, P3));
            p = p.fma(r, FloatVector.broadcast(S, P4));
            p = p.fma(r, FloatVector.broadcast(S, P5));
            FloatVector y = p.mul(r).fma(r, r).add(1f);
            IntVector bits = t.reinterpretAsInts().sub(ROUND_BITS - 127).lanewise(VectorOperators.LSHL, 23);
            y.mul(bits.reinterpretAsFloats()).intoArray(dst, dstFrom + i);
        }
        for (; i < n; i++) {
            dst[dstFrom + i] = exp(scale * src[srcFrom + i] - shift);
        }
    }

    /**
     * The softmax step down a tile of scores held transposed (a row per key, a lane per query row): for rows r < rows
     * and columns j < width (a multiple of the vector length), a[r * width + j] = exp(a[r * width + j] - max[j]) and
     * sum[j] += it, the rows summed in order. max[j] must be at least every a[r * width + j] that is not -infinity,
     * so the upper clamp is left out. The same computation as {@link #exp(float[], int, float[], int, int, float,
     * float)}, written out again rather than shared through a method on vectors: a vector returned by a method that
     * C2 does not inline is boxed (6 MB per forward pass when this step called such a helper).
     */
    public static void expLanes(float[] a, int rows, int width, float[] max, float[] sum) {
        for (int c = 0; c < width; c += L) {
            FloatVector shift = FloatVector.fromArray(S, max, c);
            FloatVector acc = FloatVector.fromArray(S, sum, c);
            for (int row = 0; row < rows; row++) {
                int at = row * width + c;
                FloatVector v = FloatVector.fromArray(S, a, at).sub(shift);
                FloatVector x = v.blend(MIN_X, v.lt(MIN_X));
                FloatVector t = x.fma(FloatVector.broadcast(S, LOG2E), FloatVector.broadcast(S, ROUND));
                FloatVector k = t.sub(ROUND);
                FloatVector r = k.fma(FloatVector.broadcast(S, -LN2_HI), x);
                r = k.fma(FloatVector.broadcast(S, -LN2_LO), r);
                FloatVector p = r.fma(FloatVector.broadcast(S, P0), FloatVector.broadcast(S, P1));
                p = p.fma(r, FloatVector.broadcast(S, P2));
                p = p.fma(r, FloatVector.broadcast(S, P3));
                p = p.fma(r, FloatVector.broadcast(S, P4));
                p = p.fma(r, FloatVector.broadcast(S, P5));
                FloatVector y = p.mul(r).fma(r, r).add(1f);
                IntVector bits = t.reinterpretAsInts().sub(ROUND_BITS - 127).lanewise(VectorOperators.LSHL, 23);
                y = y.mul(bits.reinterpretAsFloats());
                y.intoArray(a, at);
                acc = acc.add(y);
            }
            acc.intoArray(sum, c);
        }
    }

    // exp(x), the same computation on one float
    static float exp(float x) {
        x = Math.min(Math.max(x, MIN_X), MAX_X);
        float t = Math.fma(x, LOG2E, ROUND);
        float k = t - ROUND;
        float r = Math.fma(k, -LN2_HI, x);
        r = Math.fma(k, -LN2_LO, r);
        float p = Math.fma(r, P0, P1);
        p = Math.fma(p, r, P2);
        p = Math.fma(p, r, P3);
        p = Math.fma(p, r, P4);
        p = Math.fma(p, r, P5);
        float y = Math.fma(p * r, r, r) + 1f;
        return y * Float.intBitsToFloat((Float.floatToRawIntBits(t) - (ROUND_BITS - 127)) << 23);
    }

    // x[xFrom .. xFrom+n) . y[yFrom .. yFrom+n): lane-wise FMA, then lanes and tail added in order
    public static float dot(float[] x, int xFrom, float[] y, int yFrom, int n) {
        FloatVector acc = FloatVector.zero(S);
        int i = 0;
        for (; i + L <= n; i += L) {
            acc = FloatVector.fromArray(S, x, xFrom + i).fma(FloatVector.fromArray(S, y, yFrom + i), acc);
        }
        float[] lanes = LANES.get();
        acc.intoArray(lanes, 0);
        float s = 0;
        for (float lane : lanes) {
            s += lane;
        }
        for (; i < n; i++) {
            s = Math.fma(x[xFrom + i], y[yFrom + i], s);
        }
        return s;
    }

    // a[from] + ... + a[from+n-1]: lane-wise, then lanes and tail added in order
    public static float sum(float[] a, int from, int n) {
        FloatVector acc = FloatVector.zero(S);
        int i = 0;
        for (; i + L <= n; i += L) {
            acc = acc.add(FloatVector.fromArray(S, a, from + i));
        }
        float[] lanes = LANES.get();
        acc.intoArray(lanes, 0);
        float s = 0;
        for (float lane : lanes) {
            s += lane;
        }
        for (; i < n; i++) {
            s += a[from + i];
        }
        return s;
    }
}
