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
 * transposes and packed activations are kept per shape, so a warm training step allocates nothing here.
 * Transposes and repacking run on the pool's threads.
 */
final class TrainMatmul implements AutoCloseable, WorkerPool.Task {
    private final WorkerPool pool;
    private final Gemm gemm = new Gemm();
    /** x^T of weight gradients, one per shape seen (a handful: found by a scan, so no key is boxed). */
    private final List<PackedMatrix> packedActivations = new ArrayList<>();
    private float[] transposed = new float[0];

    /** Rows of a transpose per chunk. */
    private static final int TRANSPOSE_ROWS = 64;

    // The copy in progress (set by the caller, read by the pool's threads): a transpose or a repacking.
    private float[] src;
    private float[] dst;
    private int srcRows;
    private int srcCols;
    private PackedMatrix packTarget;
    private boolean packTransposed;

    TrainMatmul(int threads) {
        pool = new WorkerPool(threads);
    }

    @Override
    public void run(int chunk, int worker) {
        if (packTarget != null) {
            if (packTransposed) {
                packTarget.fillTransposedPanel(src, chunk);
            } else {
                packTarget.fillPanel(src, chunk);
            }
            return;
        }
        // in tiles of 64 rows x 16 columns, so that both sides touch few cache lines at a time
        int r0 = chunk * TRANSPOSE_ROWS;
        int r1 = Math.min(srcRows, r0 + TRANSPOSE_ROWS);
        for (int c0 = 0; c0 < srcCols; c0 += 16) {
            int c1 = Math.min(srcCols, c0 + 16);
            for (int r = r0; r < r1; r++) {
                for (int c = c0; c < c1; c++) {
                    dst[c * srcRows + r] = src[r * srcCols + c];
                }
            }
        }
    }

    // dst[cols, rows] = src[rows, cols]^T, rows split among the threads
    private void transpose(float[] dst, float[] src, int rows, int cols) {
        this.src = src;
        this.dst = dst;
        this.srcRows = rows;
        this.srcCols = cols;
        pool.run(this, (rows + TRANSPOSE_ROWS - 1) / TRANSPOSE_ROWS);
        this.src = null;
        this.dst = null;
    }

    // target = m (transposed: m^T), panels split among the threads
    void pack(PackedMatrix target, float[] m, boolean transposed) {
        this.packTarget = target;
        this.packTransposed = transposed;
        this.src = m;
        pool.run(this, target.panels());
        this.packTarget = null;
        this.src = null;
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
        void refresh(TrainMatmul mm, float[] w) {
            mm.pack(forward, w, false);
            mm.pack(transposed, w, true);
        }
    }

    // out[R, W.out] = x[R, W.in] . W^T
    void forward(float[] out, float[] x, Weight w, int rows) {
        gemm.multiply(pool, out, x, w.forward, rows);
    }

    // dx[R, W.in] = dout[R, W.out] . W (written)
    void backwardInput(float[] dx, float[] dout, Weight w, int rows) {
        gemm.multiply(pool, dx, dout, w.transposed, rows, false);
    }

    // dx[R, W.in] += dout[R, W.out] . W: for an input read by several products
    void backwardInputAdd(float[] dx, float[] dout, Weight w, int rows) {
        gemm.multiply(pool, dx, dout, w.transposed, rows, true);
    }

    // dW[out, in] = dout[R, out]^T . x[R, in] (written)
    void backwardWeight(float[] dw, float[] dout, float[] x, int rows, int out, int in) {
        backwardWeight(dw, dout, packActivations(x, rows, in), rows, out);
    }

    // x[R, in] packed as the GEMM's right operand of a weight gradient (x^T [in, R]); valid until the next
    // call for the same shape, so products that share an input (w1 and w3, wq, wk and wv) pack it once
    PackedMatrix packActivations(float[] x, int rows, int in) {
        PackedMatrix xT = packedTranspose(in, rows);
        pack(xT, x, true);
        return xT;
    }

    // dW[out, in] = dout[R, out]^T . x, with x packed by packActivations (written)
    void backwardWeight(float[] dw, float[] dout, PackedMatrix xT, int rows, int out) {
        if (transposed.length < out * rows) {
            transposed = new float[out * rows];
        }
        transpose(transposed, dout, rows, out);
        gemm.multiply(pool, dw, transposed, xT, out);
    }

    private PackedMatrix packedTranspose(int out, int in) {
        for (int i = 0; i < packedActivations.size(); i++) {
            PackedMatrix p = packedActivations.get(i);
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
