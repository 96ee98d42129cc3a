package dev.mod.cpu;

import dev.mod.model.DType;
import dev.mod.model.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * A weight matrix W [out, in] stored as BF16 or F16 (as in its model file), in the panel layout of
 * {@link PackedMatrix} with rows taken in pairs: one int holds a column's values of rows 2p (low half) and 2p + 1
 * (high half). A vector of ints then widens to two float vectors with one instruction each (BF16: a shift and a
 * mask), rather than a load of half a vector and a lane-widening conversion: on a decode step's matrix-vector
 * product that is the difference between being bound by the conversion and by memory (Zen 5, one thread, weights
 * from DRAM: 35 against 24 GB/s). A memory-bound product reads half the bytes of float weights; accumulation is in
 * float.
 */
public record PackedHalfMatrix(int[] data, DType dtype, int out, int in, int width) {
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_PREFERRED;

    public PackedHalfMatrix {
        if (dtype != DType.BF16 && dtype != DType.F16) {
            throw new IllegalArgumentException("16-bit panels hold BF16 or F16, not " + dtype);
        }
        if (width % I.length() != 0) {
            throw new IllegalArgumentException("a panel of " + width + " columns is not a whole number of vectors");
        }
    }

    public int panels() {
        return (out + width - 1) / width;
    }

    /** Pairs of rows in a panel: (in + 1) / 2, an odd last row paired with zeros. */
    public int pairs() {
        return (in + 1) / 2;
    }

    /** The tensor's stored 16-bit values, repacked into panels of row pairs (zero past `out` and `in`); nothing is rounded. */
    public static PackedHalfMatrix pack(Tensor w, int width) {
        if (w.rank() != 2 || (w.dtype() != DType.BF16 && w.dtype() != DType.F16)) {
            throw new IllegalArgumentException(w.name() + " is not a 16-bit matrix");
        }
        int out = Math.toIntExact(w.dim(0));
        int in = Math.toIntExact(w.dim(1));
        int panels = (out + width - 1) / width;
        int pairs = (in + 1) / 2;
        int[] data = new int[Math.multiplyExact(Math.multiplyExact(panels, pairs), width)];
        for (int o = 0; o < out; o++) {
            int panel = o / width;
            int c = o % width;
            long row = (long) o * in;
            for (int i = 0; i < in; i++) {
                int bits = w.getBits(row + i) & 0xFFFF;
                data[(panel * pairs + i / 2) * width + c] |= (i % 2 == 0) ? bits : bits << 16;
            }
        }
        return new PackedHalfMatrix(data, w.dtype(), out, in, width);
    }

    // to[(k1 - k0) * width] = rows k0 .. k1-1 of panel `panel`, as floats; k0 even
    void widen(int panel, int k0, int k1, float[] to) {
        int lanes = I.length();
        for (int k = k0; k < k1; k += 2) {
            int from = (panel * pairs() + k / 2) * width;
            int at = (k - k0) * width;
            boolean both = k + 1 < k1;
            for (int c = 0; c < width; c += lanes) {
                IntVector v = IntVector.fromArray(I, data, from + c);
                if (dtype == DType.BF16) {
                    v.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(to, at + c);
                    if (both) {
                        v.and(0xFFFF0000).reinterpretAsFloats().intoArray(to, at + width + c);
                    }
                } else {
                    f16(v.and(0xFFFF)).intoArray(to, at + c);
                    if (both) {
                        f16(v.lanewise(VectorOperators.LSHR, 16)).intoArray(to, at + width + c);
                    }
                }
            }
        }
    }

    /**
     * The floats of F16 values h (in the low 16 bits of each lane, the rest zero), bit for bit
     * Float.float16ToFloat except for NaN payloads (the Vector API has no F16 lanes): exponent and mantissa shifted
     * into a float's places and scaled by 2^112, which is exact for normal and subnormal values; infinities and NaNs
     * get the float's all-ones exponent; then the sign. Its callers call it at most twice in a loop, with each half as
     * its own value: a vector merged from two branches, or returned by a call C2 did not inline, is boxed on the heap.
     */
    static FloatVector f16(IntVector h) {
        IntVector magnitude = h.and(0x7FFF).lanewise(VectorOperators.LSHL, 13);
        IntVector scaled = magnitude.reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts();
        VectorMask<Integer> special = h.and(0x7C00).compare(VectorOperators.EQ, 0x7C00);
        return scaled.blend(magnitude.or(0x7F800000), special).or(h.and(0x8000).lanewise(VectorOperators.LSHL, 16))
                .reinterpretAsFloats();
    }
}
