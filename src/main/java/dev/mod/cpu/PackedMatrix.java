package dev.mod.cpu;

import dev.mod.model.Tensor;

/**
 * A weight matrix W [out, in] repacked for the GEMM micro-kernel: column panels of `width` outputs,
 * each stored k-major (data[(panel * in + i) * width + c] = W[panel * width + c][i]), zero-padded past
 * `out`. The micro-kernel then streams one panel contiguously while broadcasting activations.
 */
public record PackedMatrix(float[] data, int out, int in, int width) {
    public int panels() {
        return (out + width - 1) / width;
    }

    public static PackedMatrix pack(Tensor w, int width) {
        if (w.rank() != 2) {
            throw new IllegalArgumentException(w.name() + " is not a matrix");
        }
        int out = Math.toIntExact(w.dim(0));
        int in = Math.toIntExact(w.dim(1));
        int panels = (out + width - 1) / width;
        float[] data = new float[Math.multiplyExact(Math.multiplyExact(panels, in), width)];
        for (int o = 0; o < out; o++) {
            int panel = o / width;
            int c = o % width;
            long row = (long) o * in;
            for (int i = 0; i < in; i++) {
                data[(panel * in + i) * width + c] = w.get(row + i);
            }
        }
        return new PackedMatrix(data, out, in, width);
    }

    public static PackedMatrix pack(float[] w, int out, int in, int width) {
        return pack(Tensor.of("matrix", w, out, in), width);
    }

    /** A zero matrix of this shape, for refilling in place (training repacks its weights every step). */
    public static PackedMatrix allocate(int out, int in, int width) {
        int panels = (out + width - 1) / width;
        return new PackedMatrix(new float[Math.multiplyExact(Math.multiplyExact(panels, in), width)], out, in, width);
    }

    // this[out, in] = w[out, in] (row-major), repacked in place
    public void fill(float[] w) {
        for (int o = 0; o < out; o++) {
            int base = (o / width) * in * width + o % width;
            for (int i = 0; i < in; i++) {
                data[base + i * width] = w[o * in + i];
            }
        }
    }

    // this[out, in] = m^T for m[in, out] (row-major), repacked in place
    public void fillTransposed(float[] m) {
        for (int i = 0; i < in; i++) {
            for (int o = 0; o < out; o++) {
                data[((o / width) * in + i) * width + o % width] = m[i * out + o];
            }
        }
    }
}
