package dev.mod.cpu;

import dev.mod.model.Tensor;
import dev.mod.train.TrainingKernels;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * A weight matrix W [out, in] repacked for the GEMM micro-kernel: column panels of `width` outputs,
 * each stored k-major (data[(panel * in + i) * width + c] = W[panel * width + c][i]), zero-padded past
 * `out`. The micro-kernel then streams one panel contiguously while broadcasting activations.
 */
public record PackedMatrix(float[] data, int out, int in, int width) implements TrainingKernels.Activations {
    /** Four floats: a row of a 4-wide panel in one move. */
    private static final VectorSpecies<Float> FOUR = FloatVector.SPECIES_128;

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
        for (int panel = 0; panel < panels(); panel++) {
            fillPanel(w, panel);
        }
    }

    // panel `panel` of this[out, in] = w[out, in] (row-major); panels are independent, so threads may split them
    public void fillPanel(float[] w, int panel) {
        int o1 = Math.min(out, (panel + 1) * width);
        int base = panel * in * width;
        for (int o = panel * width; o < o1; o++) {
            int c = o - panel * width;
            for (int i = 0; i < in; i++) {
                data[base + i * width + c] = w[o * in + i];
            }
        }
    }

    // this[out, in] = m^T for m[in, out] (row-major), repacked in place
    public void fillTransposed(float[] m) {
        fillTransposedColumns(m, 0, in);
    }

    /**
     * Columns first .. end-1 of this[out, in] = m^T for m[in, out] (row-major), i.e. rows first .. end-1 of m,
     * each cut into its panels' pieces. Rows are taken 16 at a time across all the panels, so that a narrow panel
     * (the GEMM's 4-row left operand) reads whole cache lines of m while they are still in L1; ranges of columns
     * are independent, so threads may split them.
     */
    public void fillTransposedColumns(float[] m, int first, int end) {
        int panels = panels();
        for (int i0 = first; i0 < end; i0 += 16) {
            int i1 = Math.min(end, i0 + 16);
            for (int panel = 0; panel < panels; panel++) {
                int o0 = panel * width;
                int count = Math.min(width, out - o0);
                int base = panel * in * width;
                if (count == 4 && width == 4) {
                    for (int i = i0; i < i1; i++) {
                        FloatVector.fromArray(FOUR, m, i * out + o0).intoArray(data, base + i * 4);
                    }
                } else {
                    for (int i = i0; i < i1; i++) {
                        System.arraycopy(m, i * out + o0, data, base + i * width, count);
                    }
                }
            }
        }
    }
}
