package dev.mod.model;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A named, typed, shaped view of little-endian bytes: a memory-mapped region of a model file
 * or a heap array. Elements are read in place, so a mapped model is never copied onto the heap.
 */
public record Tensor(String name, DType dtype, long[] shape, MemorySegment data) {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    public Tensor {
        shape = shape.clone();
        if (data.byteSize() != numel(shape) * dtype.bytes()) {
            throw new IllegalArgumentException(name + ": " + data.byteSize() + " bytes for shape "
                    + Arrays.toString(shape) + " of " + dtype);
        }
    }

    public static Tensor of(String name, float[] values, long... shape) {
        return new Tensor(name, DType.F32, shape, MemorySegment.ofArray(values));
    }

    public static Tensor ofInts(String name, int[] values, long... shape) {
        return new Tensor(name, DType.I32, shape, MemorySegment.ofArray(values));
    }

    public static long numel(long[] shape) {
        long n = 1;
        for (long s : shape) {
            n = Math.multiplyExact(n, s);
        }
        return n;
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public long dim(int axis) {
        return shape[axis];
    }

    public int rank() {
        return shape.length;
    }

    public long numel() {
        return numel(shape);
    }

    /** Element i (row-major) as a float, whatever the stored float type. */
    public float get(long i) {
        return switch (dtype) {
            case F32 -> data.get(F32, i * 4);
            case F16 -> Float.float16ToFloat(data.get(U16, i * 2));
            case BF16 -> Float.intBitsToFloat((data.get(U16, i * 2) & 0xffff) << 16);
            case I32 -> throw new IllegalStateException(name + " holds integers");
        };
    }

    /** Element i's stored bits of a 16-bit float tensor (BF16 or F16), unconverted. */
    public short getBits(long i) {
        if (dtype.bytes() != 2) {
            throw new IllegalStateException(name + " does not hold 16-bit values");
        }
        return data.get(U16, i * 2);
    }

    /**
     * The tensor rounded to a 16-bit float type (round to nearest, ties to even; BF16 keeps the float's range,
     * F16 saturates to infinity past 65504), or itself when it is already of that type. F32 converts back.
     */
    public Tensor as(DType type) {
        if (type == dtype) {
            return this;
        }
        float[] values = toFloatArray();
        return switch (type) {
            case F32 -> of(name, values, shape);
            case BF16, F16 -> {
                short[] bits = new short[values.length];
                for (int i = 0; i < values.length; i++) {
                    bits[i] = type == DType.BF16 ? bf16(values[i]) : Float.floatToFloat16(values[i]);
                }
                yield new Tensor(name, type, shape, MemorySegment.ofArray(bits));
            }
            case I32 -> throw new IllegalArgumentException(name + ": floats cannot become " + type);
        };
    }

    /** The float rounded to BF16 (nearest, ties to even); NaN stays a (quiet) NaN. */
    public static short bf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) {
            return (short) ((bits >>> 16) | 0x40);
        }
        int rounding = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }

    public int getInt(long i) {
        if (dtype != DType.I32) {
            throw new IllegalStateException(name + " holds floats");
        }
        return data.get(I32, i * 4);
    }

    /** All elements as floats, on the heap. */
    public float[] toFloatArray() {
        float[] out = new float[Math.toIntExact(numel())];
        for (int i = 0; i < out.length; i++) {
            out[i] = get(i);
        }
        return out;
    }

    public int[] toIntArray() {
        int[] out = new int[Math.toIntExact(numel())];
        for (int i = 0; i < out.length; i++) {
            out[i] = getInt(i);
        }
        return out;
    }

    public String shapeString() {
        return Arrays.toString(shape);
    }
}
