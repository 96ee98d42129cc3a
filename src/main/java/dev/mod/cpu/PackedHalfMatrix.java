package dev.mod.cpu;

import dev.mod.model.DType;
import dev.mod.model.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * A weight matrix W [out, in] stored as BF16 or F16 (as in its model file), in the panel layout of
 * {@link PackedMatrix}: half the bytes, so a memory-bound product (a decode step's matrix-vector) reads half as
 * much. The GEMM widens one panel's block of rows to floats in a scratch that stays in cache and runs its float
 * micro-kernel on it; accumulation is in float.
 */
public record PackedHalfMatrix(short[] data, DType dtype, int out, int in, int width) {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;
    /** As many shorts as floats in a vector: one short vector widens to one float vector. */
    private static final VectorSpecies<Short> H = VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));

    public PackedHalfMatrix {
        if (dtype != DType.BF16 && dtype != DType.F16) {
            throw new IllegalArgumentException("16-bit panels hold BF16 or F16, not " + dtype);
        }
    }

    public int panels() {
        return (out + width - 1) / width;
    }

    /** The tensor's stored 16-bit values, repacked into panels (zero past `out`); nothing is rounded. */
    public static PackedHalfMatrix pack(Tensor w, int width) {
        if (w.rank() != 2 || (w.dtype() != DType.BF16 && w.dtype() != DType.F16)) {
            throw new IllegalArgumentException(w.name() + " is not a 16-bit matrix");
        }
        int out = Math.toIntExact(w.dim(0));
        int in = Math.toIntExact(w.dim(1));
        int panels = (out + width - 1) / width;
        short[] data = new short[Math.multiplyExact(Math.multiplyExact(panels, in), width)];
        for (int o = 0; o < out; o++) {
            int panel = o / width;
            int c = o % width;
            long row = (long) o * in;
            for (int i = 0; i < in; i++) {
                data[(panel * in + i) * width + c] = w.getBits(row + i);
            }
        }
        return new PackedHalfMatrix(data, w.dtype(), out, in, width);
    }

    // a float vector of the BF16 values data[i .. i + lanes - 1]: a BF16 value is the upper half of the float's bits
    static FloatVector loadBf16(short[] data, int i) {
        return ((IntVector) ShortVector.fromArray(H, data, i).convertShape(VectorOperators.S2I, I, 0))
                .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    /**
     * A float vector of the F16 values data[i .. i + lanes - 1], bit for bit Float.float16ToFloat except for NaN
     * payloads (the Vector API has no F16 lanes): exponent and mantissa shifted into a float's places and scaled by 2^112, which is exact for
     * normal and subnormal values; infinities and NaNs get the float's all-ones exponent; then the sign.
     */
    static FloatVector loadF16(short[] data, int i) {
        IntVector h = (IntVector) ShortVector.fromArray(H, data, i).convertShape(VectorOperators.S2I, I, 0);
        IntVector magnitude = h.and(0x7FFF).lanewise(VectorOperators.LSHL, 13);
        IntVector scaled = magnitude.reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts();
        VectorMask<Integer> special = h.and(0x7C00).compare(VectorOperators.EQ, 0x7C00);
        return scaled.blend(magnitude.or(0x7F800000), special)
                .or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
    }

    // lanes of values from data[i ..] of this matrix's type
    FloatVector load(short[] data, int i) {
        return dtype == DType.BF16 ? loadBf16(data, i) : loadF16(data, i);
    }

    // to[(k1 - k0) * width] = rows k0 .. k1-1 of panel `panel`, as floats
    void widen(int panel, int k0, int k1, float[] to) {
        int from = (panel * in + k0) * width;
        int n = (k1 - k0) * width;
        int i = 0;
        for (; i + F.length() <= n; i += F.length()) {
            load(data, from + i).intoArray(to, i);
        }
        for (; i < n; i++) {
            to[i] = dtype == DType.BF16 ? Float.intBitsToFloat(data[from + i] << 16) : Float.float16ToFloat(data[from + i]);
        }
    }
}
