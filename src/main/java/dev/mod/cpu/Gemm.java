package dev.mod.cpu;

import dev.mod.model.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * out[rows, W.out] = x[rows, W.in] . W^T, with W packed into panels of three vectors' width.
 * The micro-kernel holds a 4-row x 3-vector tile of accumulators in registers and streams the panel;
 * the reduction dimension is split into fixed blocks that stay in L1. Work is split into chunks of
 * (64-row block, panel): each output element is summed by one thread in a fixed order, so results do
 * not depend on the number of threads. The left operand is either row-major or, when it is the transpose
 * of a matrix at hand (training's weight gradients), packed into micro-panels of 4 rows (a PackedMatrix
 * of width {@link #MR}, filled by {@link PackedMatrix#fillTransposedColumns}), which copies 4-float pieces
 * rather than transposing. Weights may also be 16-bit ({@link PackedHalfMatrix}): each chunk widens its panel's
 * k-block to floats in the worker's scratch (in cache) and runs the same micro-kernel on it, so a product reads
 * half the bytes of its weights and accumulates in float; a block of 64 rows shares one widening.
 */
public final class Gemm implements WorkerPool.Task {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int L = S.length();
    /** Ints as wide as the float vectors: one holds a pair of 16-bit weights per lane (see PackedHalfMatrix). */
    private static final VectorSpecies<Integer> PAIRS = IntVector.SPECIES_PREFERRED;
    /** Panel width: three vectors. */
    public static final int NR = 3 * L;
    /** Rows of the micro-kernel, and the width of a packed left operand's micro-panels. */
    public static final int MR = 4;
    private static final int MC = 64;
    /**
     * The reduction's block: a product with at most KC_WHOLE terms per output runs it whole (no partial sums written
     * back and read again), a longer one in blocks of KC.
     */
    private static final int KC = 256;
    private static final int KC_WHOLE = 512;

    /** Per worker: a tile of results at the edge of the output (fewer than 4 rows or NR columns). */
    private float[][] tiles = new float[0][];
    /** Per worker: a 16-bit panel's k-block widened to floats, [KC_WHOLE, NR]. */
    private float[][] widened = new float[0][];

    // The call in progress (set by multiply, read by the pool's threads).
    private float[] out;
    private float[] x;
    private boolean leftPacked;
    private PackedMatrix w;        // float panels, or
    private PackedHalfMatrix half; // 16-bit panels
    private int in;                // the weights' [out, in]
    private int n;
    private int rows;
    private boolean accumulate;
    private int rowBlocks;

    // out[rows, w.out] = x[rows, w.in] . w^T
    public void multiply(WorkerPool pool, float[] out, float[] x, PackedMatrix w, int rows) {
        multiply(pool, out, x, w, rows, false);
    }

    // out[rows, w.out] (+)= x[rows, w.in] . w^T: with accumulate, the product is added to what out holds
    public void multiply(WorkerPool pool, float[] out, float[] x, PackedMatrix w, int rows, boolean accumulate) {
        start(pool, out, x, false, w, null, rows, accumulate);
    }

    // out[rows, w.out] = x[rows, w.in] . w^T, w in 16 bits (widened to float per panel block, accumulated in float)
    public void multiply(WorkerPool pool, float[] out, float[] x, PackedHalfMatrix w, int rows) {
        start(pool, out, x, false, null, w, rows, false);
    }

    // out[a.out, w.out] (+)= A[a.out, a.in] . w^T, A packed by packLeft (micro-panels of MR rows)
    public void multiply(WorkerPool pool, float[] out, PackedMatrix a, PackedMatrix w, boolean accumulate) {
        if (a.width() != MR || a.in() != w.in()) {
            throw new IllegalArgumentException("left operand [" + a.out() + ", " + a.in() + "] of width " + a.width()
                    + " does not fit a right operand with " + w.in() + " columns");
        }
        start(pool, out, a.data(), true, w, null, a.out(), accumulate);
    }

    private void start(WorkerPool pool, float[] out, float[] x, boolean leftPacked, PackedMatrix w, PackedHalfMatrix half,
                       int rows, boolean accumulate) {
        prepare(pool, out, x, leftPacked, w, half, rows, accumulate);
        pool.run(this, chunks());
        release();
    }

    /**
     * Several products in one hand-off to the workers (a mixture's experts, each with its rows and weights):
     * products[i] computes outs[i][rows[i], w.out] = xs[i][rows[i], w.in] . ws[i]^T, float or 16-bit weights
     * (PackedMatrix or PackedHalfMatrix); each chunk is one product's (row block, panel), so every output is summed
     * in the order a lone product sums it. Products with no rows are skipped.
     */
    public static void multiplyAll(WorkerPool pool, Gemm[] products, float[][] outs, float[][] xs, Object[] ws, int[] rows, int count) {
        int[] firstChunk = new int[count + 1];
        for (int i = 0; i < count; i++) {
            PackedMatrix w = ws[i] instanceof PackedMatrix m ? m : null;
            PackedHalfMatrix half = ws[i] instanceof PackedHalfMatrix h ? h : null;
            products[i].prepare(pool, outs[i], xs[i], false, w, half, rows[i], false);
            firstChunk[i + 1] = firstChunk[i] + products[i].chunks();
        }
        pool.run((chunk, worker) -> {
            int i = 0;
            while (chunk >= firstChunk[i + 1]) {
                i++;
            }
            products[i].run(chunk - firstChunk[i], worker);
        }, firstChunk[count]);
        for (int i = 0; i < count; i++) {
            products[i].release();
        }
    }

    // Sets up a product for run(chunk, worker), chunk < chunks(), without running it
    private void prepare(WorkerPool pool, float[] out, float[] x, boolean leftPacked, PackedMatrix w, PackedHalfMatrix half,
                         int rows, boolean accumulate) {
        if (tiles.length < pool.threads()) {
            tiles = new float[pool.threads()][MR * NR];
        }
        if (half != null && widened.length < pool.threads()) {
            widened = new float[pool.threads()][KC_WHOLE * NR];
        }
        this.accumulate = accumulate;
        this.out = out;
        this.x = x;
        this.leftPacked = leftPacked;
        this.w = w;
        this.half = half;
        this.in = w != null ? w.in() : half.in();
        this.n = w != null ? w.out() : half.out();
        this.rows = rows;
        this.rowBlocks = (rows + MC - 1) / MC;
    }

    // The chunks of the prepared product: (row block, panel) pairs
    private int chunks() {
        return rowBlocks * (w != null ? w.panels() : half.panels());
    }

    private void release() {
        this.out = null;
        this.x = null;
        this.w = null;
        this.half = null;
    }

    @Override
    public void run(int chunk, int worker) {
        int panel = chunk / rowBlocks;
        int r0 = (chunk % rowBlocks) * MC;
        int r1 = Math.min(rows, r0 + MC);
        float[] tile = tiles[worker];
        int block = in <= KC_WHOLE ? in : KC;
        for (int k0 = 0; k0 < in; k0 += block) {
            int k1 = Math.min(in, k0 + block);
            boolean first = k0 == 0 && !accumulate;
            if (half != null && r1 - r0 < MR) {
                // a few rows (a decode step): widening into scratch would cost more than the products it feeds
                for (int r = r0; r < r1; r++) {
                    if (half.dtype() == DType.BF16) {
                        tile1Bf16(tile, r, panel, k0, k1, first);
                    } else {
                        tile1F16(tile, r, panel, k0, k1, first);
                    }
                }
                continue;
            }
            // the panel's rows k0 .. k1-1: in place, or widened from 16 bits
            float[] p;
            int pi;
            if (half != null) {
                p = widened[worker];
                pi = 0;
                half.widen(panel, k0, k1, p);
            } else {
                p = w.data();
                pi = (panel * in + k0) * NR;
            }
            int r = r0;
            if (leftPacked) {
                // micro-panels are zero past the last row, so a short last tile reads zeros
                for (; r < r1; r += MR) {
                    tile4(tile, r, Math.min(MR, r1 - r), panel, p, pi, k0, k1, first);
                }
                continue;
            }
            for (; r + MR <= r1; r += MR) {
                tile4(tile, r, MR, panel, p, pi, k0, k1, first);
            }
            for (; r < r1; r++) {
                tile1(tile, r, panel, p, pi, k0, k1, first);
            }
        }
    }

    // out[r..r+count-1, panel cols] (+)= A[r..r+3, k0..k1] . p[pi ..], the panel's rows k0..k1
    private void tile4(float[] tile, int r, int count, int panel, float[] p, int pi, int k0, int k1, boolean first) {
        float[] a = x;
        // row m of the tile starts at x0 + m * rowGap and its entries are step apart; r is a multiple of MR,
        // so r * in is also where a packed operand's micro-panel starts
        int rowGap = leftPacked ? 1 : in;
        int step = leftPacked ? MR : 1;
        int x0 = r * in;
        int x1 = x0 + rowGap;
        int x2 = x1 + rowGap;
        int x3 = x2 + rowGap;
        FloatVector c00 = FloatVector.zero(S), c01 = c00, c02 = c00;
        FloatVector c10 = c00, c11 = c00, c12 = c00;
        FloatVector c20 = c00, c21 = c00, c22 = c00;
        FloatVector c30 = c00, c31 = c00, c32 = c00;
        for (int i = k0, ai = k0 * step; i < k1; i++, ai += step, pi += NR) {
            FloatVector w0 = FloatVector.fromArray(S, p, pi);
            FloatVector w1 = FloatVector.fromArray(S, p, pi + L);
            FloatVector w2 = FloatVector.fromArray(S, p, pi + 2 * L);
            FloatVector b = FloatVector.broadcast(S, a[x0 + ai]);
            c00 = w0.fma(b, c00);
            c01 = w1.fma(b, c01);
            c02 = w2.fma(b, c02);
            b = FloatVector.broadcast(S, a[x1 + ai]);
            c10 = w0.fma(b, c10);
            c11 = w1.fma(b, c11);
            c12 = w2.fma(b, c12);
            b = FloatVector.broadcast(S, a[x2 + ai]);
            c20 = w0.fma(b, c20);
            c21 = w1.fma(b, c21);
            c22 = w2.fma(b, c22);
            b = FloatVector.broadcast(S, a[x3 + ai]);
            c30 = w0.fma(b, c30);
            c31 = w1.fma(b, c31);
            c32 = w2.fma(b, c32);
        }
        int col = panel * NR;
        if (count == MR && col + NR <= n) {
            // a whole tile goes straight to the output
            int o0 = r * n + col;
            int o1 = o0 + n;
            int o2 = o1 + n;
            int o3 = o2 + n;
            if (!first) {
                c00 = c00.add(FloatVector.fromArray(S, out, o0));
                c01 = c01.add(FloatVector.fromArray(S, out, o0 + L));
                c02 = c02.add(FloatVector.fromArray(S, out, o0 + 2 * L));
                c10 = c10.add(FloatVector.fromArray(S, out, o1));
                c11 = c11.add(FloatVector.fromArray(S, out, o1 + L));
                c12 = c12.add(FloatVector.fromArray(S, out, o1 + 2 * L));
                c20 = c20.add(FloatVector.fromArray(S, out, o2));
                c21 = c21.add(FloatVector.fromArray(S, out, o2 + L));
                c22 = c22.add(FloatVector.fromArray(S, out, o2 + 2 * L));
                c30 = c30.add(FloatVector.fromArray(S, out, o3));
                c31 = c31.add(FloatVector.fromArray(S, out, o3 + L));
                c32 = c32.add(FloatVector.fromArray(S, out, o3 + 2 * L));
            }
            c00.intoArray(out, o0);
            c01.intoArray(out, o0 + L);
            c02.intoArray(out, o0 + 2 * L);
            c10.intoArray(out, o1);
            c11.intoArray(out, o1 + L);
            c12.intoArray(out, o1 + 2 * L);
            c20.intoArray(out, o2);
            c21.intoArray(out, o2 + L);
            c22.intoArray(out, o2 + 2 * L);
            c30.intoArray(out, o3);
            c31.intoArray(out, o3 + L);
            c32.intoArray(out, o3 + 2 * L);
            return;
        }
        c00.intoArray(tile, 0);
        c01.intoArray(tile, L);
        c02.intoArray(tile, 2 * L);
        c10.intoArray(tile, NR);
        c11.intoArray(tile, NR + L);
        c12.intoArray(tile, NR + 2 * L);
        c20.intoArray(tile, 2 * NR);
        c21.intoArray(tile, 2 * NR + L);
        c22.intoArray(tile, 2 * NR + 2 * L);
        c30.intoArray(tile, 3 * NR);
        c31.intoArray(tile, 3 * NR + L);
        c32.intoArray(tile, 3 * NR + 2 * L);
        flush(tile, r, count, col, first);
    }

    // out[r, panel cols] (+)= x[r, k0..k1] . p[pi ..], the panel's rows k0..k1. Two rows a turn, the products in the
    // same order as one a turn: with one, C2's loop read the panel at half the machine's streaming rate (12 against
    // 26 GB/s on one Zen 4 core), and a decode step is that stream.
    private void tile1(float[] tile, int r, int panel, float[] p, int pi, int k0, int k1, boolean first) {
        int xr = r * in;
        FloatVector c0 = FloatVector.zero(S), c1 = c0, c2 = c0;
        int i = k0;
        for (; i + 1 < k1; i += 2, pi += 2 * NR) {
            FloatVector b0 = FloatVector.broadcast(S, x[xr + i]);
            FloatVector b1 = FloatVector.broadcast(S, x[xr + i + 1]);
            FloatVector w0 = FloatVector.fromArray(S, p, pi);
            FloatVector w1 = FloatVector.fromArray(S, p, pi + L);
            FloatVector w2 = FloatVector.fromArray(S, p, pi + 2 * L);
            FloatVector v0 = FloatVector.fromArray(S, p, pi + NR);
            FloatVector v1 = FloatVector.fromArray(S, p, pi + NR + L);
            FloatVector v2 = FloatVector.fromArray(S, p, pi + NR + 2 * L);
            c0 = w0.fma(b0, c0);
            c1 = w1.fma(b0, c1);
            c2 = w2.fma(b0, c2);
            c0 = v0.fma(b1, c0);
            c1 = v1.fma(b1, c1);
            c2 = v2.fma(b1, c2);
        }
        if (i < k1) {
            FloatVector b = FloatVector.broadcast(S, x[xr + i]);
            c0 = FloatVector.fromArray(S, p, pi).fma(b, c0);
            c1 = FloatVector.fromArray(S, p, pi + L).fma(b, c1);
            c2 = FloatVector.fromArray(S, p, pi + 2 * L).fma(b, c2);
        }
        c0.intoArray(tile, 0);
        c1.intoArray(tile, L);
        c2.intoArray(tile, 2 * L);
        flush(tile, r, 1, panel * NR, first);
    }

    // out[r, panel cols] (+)= x[r, k0..k1] . panel[k0..k1], the panel's BF16 values widened in registers, a pair of rows
    // per load (the low half of an int is row i, the high half row i + 1); k0 even; the same products in the same order
    // as on the widened panel. The widening is written out here, not called: C2 gives up inlining vector-returning calls
    // in a loop this size, and a vector that crosses a call is boxed.
    private void tile1Bf16(float[] tile, int r, int panel, int k0, int k1, boolean first) {
        int[] p = half.data();
        int xr = r * in;
        FloatVector c0 = FloatVector.zero(S), c1 = c0, c2 = c0;
        int pi = (panel * half.pairs() + k0 / 2) * NR;
        int i = k0;
        for (; i + 1 < k1; i += 2, pi += NR) {
            FloatVector b0 = FloatVector.broadcast(S, x[xr + i]);
            FloatVector b1 = FloatVector.broadcast(S, x[xr + i + 1]);
            IntVector v0 = IntVector.fromArray(PAIRS, p, pi);
            IntVector v1 = IntVector.fromArray(PAIRS, p, pi + L);
            IntVector v2 = IntVector.fromArray(PAIRS, p, pi + 2 * L);
            c0 = v0.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(b0, c0);
            c1 = v1.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(b0, c1);
            c2 = v2.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(b0, c2);
            c0 = v0.and(0xFFFF0000).reinterpretAsFloats().fma(b1, c0);
            c1 = v1.and(0xFFFF0000).reinterpretAsFloats().fma(b1, c1);
            c2 = v2.and(0xFFFF0000).reinterpretAsFloats().fma(b1, c2);
        }
        if (i < k1) {
            // an odd last row: the low halves only
            FloatVector b0 = FloatVector.broadcast(S, x[xr + i]);
            c0 = IntVector.fromArray(PAIRS, p, pi).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(b0, c0);
            c1 = IntVector.fromArray(PAIRS, p, pi + L).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(b0, c1);
            c2 = IntVector.fromArray(PAIRS, p, pi + 2 * L).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().fma(b0, c2);
        }
        c0.intoArray(tile, 0);
        c1.intoArray(tile, L);
        c2.intoArray(tile, 2 * L);
        flush(tile, r, 1, panel * NR, first);
    }

    // out[r, panel cols] (+)= x[r, k0..k1] . panel[k0..k1] for F16 panels: as tile1Bf16, one vector of columns at a time,
    // since F16's widening is many instructions and C2 inlines it only a few times in one loop
    private void tile1F16(float[] tile, int r, int panel, int k0, int k1, boolean first) {
        int[] p = half.data();
        int xr = r * in;
        int base = (panel * half.pairs() + k0 / 2) * NR;
        for (int c = 0; c < NR; c += L) {
            FloatVector acc = FloatVector.zero(S);
            int i = k0;
            int pi = base + c;
            for (; i + 1 < k1; i += 2, pi += NR) {
                IntVector v = IntVector.fromArray(PAIRS, p, pi);
                acc = PackedHalfMatrix.f16(v.and(0xFFFF)).fma(FloatVector.broadcast(S, x[xr + i]), acc);
                acc = PackedHalfMatrix.f16(v.lanewise(VectorOperators.LSHR, 16)).fma(FloatVector.broadcast(S, x[xr + i + 1]), acc);
            }
            if (i < k1) {
                acc = PackedHalfMatrix.f16(IntVector.fromArray(PAIRS, p, pi).and(0xFFFF)).fma(FloatVector.broadcast(S, x[xr + i]), acc);
            }
            acc.intoArray(tile, c);
        }
        flush(tile, r, 1, panel * NR, first);
    }

    /**
     * Adds (or, on the first k-block, writes) rows r .. r+count-1 of a tile at the output's edge, parked in the
     * worker's scratch, to the output. Vectors go through scratch rather than as arguments: a vector passed to
     * a method that is not inlined is boxed on the heap.
     */
    private void flush(float[] tile, int r, int count, int col, boolean first) {
        int width = Math.min(NR, n - col);
        for (int m = 0; m < count; m++) {
            int base = (r + m) * n + col;
            int c = 0;
            for (; c + L <= width; c += L) {
                FloatVector v = FloatVector.fromArray(S, tile, m * NR + c);
                if (!first) {
                    v = v.add(FloatVector.fromArray(S, out, base + c));
                }
                v.intoArray(out, base + c);
            }
            for (; c < width; c++) {
                out[base + c] = first ? tile[m * NR + c] : out[base + c] + tile[m * NR + c];
            }
        }
    }
}
