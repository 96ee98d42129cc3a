package dev.mod.cpu;

import dev.mod.train.TrainingKernels;

import java.util.ArrayList;
import java.util.List;

/**
 * The matrix products of training, all on the cpu backend's packed GEMM (out = x . W^T): the forward
 * product, the input gradient dx = dout . W (W^T packed), and the weight gradient dW = dout^T . x (dout^T
 * packed as the GEMM's left operand, in micro-panels of 4 of its rows; x^T packed as the right one).
 * Weights are repacked in place after every optimizer step; the packed operands are kept per shape, so a
 * warm training step allocates nothing here. Packing runs on the pool's threads.
 */
final class TrainMatmul implements AutoCloseable, WorkerPool.Task {
    private final WorkerPool pool;
    private final Gemm gemm = new Gemm();
    /** x^T of weight gradients, one per shape seen (a handful: found by a scan, so no key is boxed). */
    private final List<PackedMatrix> packedActivations = new ArrayList<>();
    /** dout^T of weight gradients, one per shape seen. */
    private final List<PackedMatrix> packedLefts = new ArrayList<>();

    // The repacking in progress (set by the caller, read by the pool's threads).
    private float[] src;
    private PackedMatrix packTarget;
    private boolean packTransposed;
    /** A transposed packing is split into whole rows of its source, 64 per chunk, so that each is read in one pass. */
    private static final int COLUMNS_PER_CHUNK = 64;

    TrainMatmul(int threads) {
        pool = new WorkerPool(threads);
    }

    @Override
    public void run(int chunk, int worker) {
        if (packTransposed) {
            int first = chunk * COLUMNS_PER_CHUNK;
            packTarget.fillTransposedColumns(src, first, Math.min(packTarget.in(), first + COLUMNS_PER_CHUNK));
        } else {
            packTarget.fillPanel(src, chunk);
        }
    }

    // target = m (transposed: m^T), split among the threads by panels (transposed: by rows of m)
    void pack(PackedMatrix target, float[] m, boolean transposed) {
        this.packTarget = target;
        this.packTransposed = transposed;
        this.src = m;
        pool.run(this, transposed ? (target.in() + COLUMNS_PER_CHUNK - 1) / COLUMNS_PER_CHUNK : target.panels());
        this.packTarget = null;
        this.src = null;
    }

    WorkerPool pool() {
        return pool;
    }

    /** A weight W [out, in] as the GEMM reads it, forward (W) and backward (W^T). */
    static final class Weight implements TrainingKernels.Matrix {
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
        PackedMatrix xT = kept(packedActivations, in, rows, Gemm.NR);
        pack(xT, x, true);
        return xT;
    }

    // dW[out, in] = dout[R, out]^T . x, with x packed by packActivations (written)
    void backwardWeight(float[] dw, float[] dout, PackedMatrix xT, int rows, int out) {
        PackedMatrix left = kept(packedLefts, out, rows, Gemm.MR);
        pack(left, dout, true);
        gemm.multiply(pool, dw, left, xT, false);
    }

    // the packed matrix [out, in] of this width kept in the list, allocated on first use
    private static PackedMatrix kept(List<PackedMatrix> list, int out, int in, int width) {
        for (int i = 0; i < list.size(); i++) {
            PackedMatrix p = list.get(i);
            if (p.out() == out && p.in() == in) {
                return p;
            }
        }
        PackedMatrix p = PackedMatrix.allocate(out, in, width);
        list.add(p);
        return p;
    }

    @Override
    public void close() {
        pool.close();
    }
}
