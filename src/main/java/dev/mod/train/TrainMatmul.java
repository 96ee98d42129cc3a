package dev.mod.train;

import dev.mod.cpu.Gemm;
import dev.mod.cpu.PackedMatrix;
import dev.mod.cpu.WorkerPool;

import java.util.ArrayList;
import java.util.List;

/**
 * The matrix products of training, all on the cpu backend's packed GEMM (out = x . W^T): the forward
 * product, the input gradient dx = dout . W (W^T packed), and the weight gradient dW = dout^T . x (dout
 * transposed, x^T packed). Weights are repacked in place after every optimizer step; scratch for the
 * transposes is kept per shape, so a warm training step allocates nothing here.
 */
final class TrainMatmul implements AutoCloseable {
    private final WorkerPool pool;
    private final Gemm gemm = new Gemm();
    /** x^T of weight gradients, one per shape seen (a handful: found by a scan, so no key is boxed). */
    private final List<PackedMatrix> packedActivations = new ArrayList<>();
    private float[] transposed = new float[0];

    TrainMatmul(int threads) {
        pool = new WorkerPool(threads);
    }

    WorkerPool pool() {
        return pool;
    }

    /** A weight W [out, in] as the GEMM reads it, forward (W) and backward (W^T). */
    static final class Weight {
        final int out;
        final int in;
        final PackedMatrix forward;
        final PackedMatrix transposed;

        Weight(int out, int in) {
            this.out = out;
            this.in = in;
            forward = PackedMatrix.allocate(out, in, Gemm.NR);
            transposed = PackedMatrix.allocate(in, out, Gemm.NR);
        }

        /** Repacks both forms from the master weights w [out, in]. */
        void refresh(float[] w) {
            forward.fill(w);
            transposed.fillTransposed(w);
        }
    }

    // out[R, W.out] = x[R, W.in] . W^T
    void forward(float[] out, float[] x, Weight w, int rows) {
        gemm.multiply(pool, out, x, w.forward, rows);
    }

    // dx[R, W.in] = dout[R, W.out] . W (written)
    void backwardInput(float[] dx, float[] dout, Weight w, int rows) {
        gemm.multiply(pool, dx, dout, w.transposed, rows);
    }

    // dW[out, in] = dout[R, out]^T . x[R, in] (written)
    void backwardWeight(float[] dw, float[] dout, float[] x, int rows, int out, int in) {
        if (transposed.length < out * rows) {
            transposed = new float[out * rows];
        }
        float[] doutT = transposed;
        for (int r = 0; r < rows; r++) {
            for (int o = 0; o < out; o++) {
                doutT[o * rows + r] = dout[r * out + o];
            }
        }
        PackedMatrix xT = packedTranspose(in, rows);
        xT.fillTransposed(x);
        gemm.multiply(pool, dw, doutT, xT, out);
    }

    private PackedMatrix packedTranspose(int out, int in) {
        for (PackedMatrix p : packedActivations) {
            if (p.out() == out && p.in() == in) {
                return p;
            }
        }
        PackedMatrix p = PackedMatrix.allocate(out, in, Gemm.NR);
        packedActivations.add(p);
        return p;
    }

    @Override
    public void close() {
        pool.close();
    }
}
