package dev.mod.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;

/**
 * The backward twin of causal attention (the forward is the cpu backend's {@link dev.mod.cpu.CausalAttention},
 * which also keeps each row's log-sum-exp for this pass). Rows are in ascending position order within each
 * sequence, so row j is visible to row i when j <= i. The probabilities are recomputed from the log-sum-exp
 * (as flash attention does), so memory grows with T, not T^2.
 *
 * Work is split by (sequence, kv head): the chunk owns the gradients of that kv head's keys and values and
 * of its query heads, so no two threads write the same gradient and results do not depend on the thread
 * count. A chunk copies its keys and values into scratch padded to whole vectors (keys and values also
 * transposed), then walks its query rows in blocks of {@link #QB}: each block is five small matrix products
 * (scores, dp, dq, dk, dv) on one register-blocked kernel, {@link TileProduct}, which keeps a tile of 6 or 4
 * rows x 4 vectors in registers, as the GEMM does; the gradients of keys and values stay in the chunk's scratch
 * until its last block.
 */
final class TrainAttention implements WorkerPool.Task {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    /** Query rows per block: their scores and gradients ([QB, T] each) stay in L2 between the products. */
    private static final int QB = 16;

    /** One worker's scratch; n and dh padded to whole vectors (nPad, dhPad). */
    private static final class Scratch {
        float[] keysT = new float[0];    // [dhPad, nPad]
        float[] valuesT = new float[0];  // [dhPad, nPad]
        float[] keys = new float[0];     // [nPad, dhPad]
        float[] dKeys = new float[0];    // [nPad, dhPad]
        float[] dValues = new float[0];  // [nPad, dhPad]
        float[] probs = new float[0];    // [QB, nPad]
        float[] dScores = new float[0];  // [QB, nPad]
        float[] q = new float[0];        // [QB, dhPad] the block's query rows
        float[] dOut = new float[0];     // [QB, dhPad] and their output gradients
        float[] dq = new float[0];       // [QB, dhPad]
        float[] delta = new float[0];    // [n] dout . out of each row of the head at hand

        void ensure(int nPad, int dhPad) {
            if (keysT.length < dhPad * nPad) {
                keysT = new float[dhPad * nPad];
                valuesT = new float[dhPad * nPad];
                keys = new float[nPad * dhPad];
                dKeys = new float[nPad * dhPad];
                dValues = new float[nPad * dhPad];
            }
            if (probs.length < QB * nPad) {
                probs = new float[QB * nPad];
                dScores = new float[QB * nPad];
            }
            if (delta.length < nPad) {
                delta = new float[nPad];
            }
            if (q.length < QB * dhPad) {
                q = new float[QB * dhPad];
                dOut = new float[QB * dhPad];
                dq = new float[QB * dhPad];
            }
        }
    }

    private final WorkerPool pool;
    private final Scratch[] scratch;
    /** l * kvDim for the lanes l of a vector: offsets of a gather down the rows of k or v. */
    private final int[] rowOffsets = new int[L];

    private float[] out;
    private float[] lse;
    private float[] q;
    private float[] k;
    private float[] v;
    private float[] dout;
    private float[] dq;
    private float[] dk;
    private float[] dv;
    private int n;
    private int nPad;
    private int nHeads;
    private int nKvHeads;
    private int dh;
    private int dhPad;

    TrainAttention(WorkerPool pool, int workers) {
        this.pool = pool;
        scratch = new Scratch[workers];
        for (int w = 0; w < workers; w++) {
            scratch[w] = new Scratch();
        }
    }

    // dq, dk, dv (written) from dout[B, n, H * dh] and the forward's q, k, v, out, lse
    void backward(float[] dq, float[] dk, float[] dv, float[] dout, float[] out, float[] lse, float[] q, float[] k, float[] v,
                  int batch, int n, int nHeads, int nKvHeads, int dh) {
        this.n = n;
        this.nPad = roundUp(n);
        this.nHeads = nHeads;
        this.nKvHeads = nKvHeads;
        this.dh = dh;
        this.dhPad = roundUp(dh);
        for (int l = 0; l < L; l++) {
            rowOffsets[l] = l * nKvHeads * dh;
        }
        for (Scratch s : scratch) {
            s.ensure(nPad, dhPad);
        }
        this.dq = dq;
        this.dk = dk;
        this.dv = dv;
        this.dout = dout;
        this.out = out;
        this.lse = lse;
        this.q = q;
        this.k = k;
        this.v = v;
        pool.run(this, batch * nKvHeads);
    }

    private static int roundUp(int x) {
        return (x + L - 1) / L * L;
    }

    @Override
    public void run(int chunk, int worker) {
        int b = chunk / nKvHeads;
        int g = chunk % nKvHeads;
        Scratch s = scratch[worker];
        loadKeysAndValues(s, b, g);
        Arrays.fill(s.dKeys, 0, nPad * dhPad, 0f);
        Arrays.fill(s.dValues, 0, nPad * dhPad, 0f);
        int group = nHeads / nKvHeads;
        int qDim = nHeads * dh;
        for (int h = g * group; h < (g + 1) * group; h++) {
            // one pass down the rows, which the hardware prefetches, rather than a cache miss per row later
            for (int i = 0; i < n; i++) {
                int row = (b * n + i) * qDim + h * dh;
                s.delta[i] = VectorMath.dot(dout, row, out, row, dh);
            }
            for (int i0 = 0; i0 < n; i0 += QB) {
                backwardBlock(s, b, h, i0);
            }
        }
        int kvDim = nKvHeads * dh;
        for (int j = 0; j < n; j++) {
            int row = (b * n + j) * kvDim + g * dh;
            System.arraycopy(s.dKeys, j * dhPad, dk, row, dh);
            System.arraycopy(s.dValues, j * dhPad, dv, row, dh);
        }
    }

    // keysT, valuesT [dhPad, nPad] and keys [nPad, dhPad] of sequence b, kv head g; padding zero
    private void loadKeysAndValues(Scratch s, int b, int g) {
        if (n < nPad || dh < dhPad) {
            // padding must read as zero; without any, every entry is overwritten below
            Arrays.fill(s.keysT, 0, dhPad * nPad, 0f);
            Arrays.fill(s.valuesT, 0, dhPad * nPad, 0f);
            Arrays.fill(s.keys, 0, nPad * dhPad, 0f);
        }
        int kvDim = nKvHeads * dh;
        int first = b * n * kvDim + g * dh;
        for (int j = 0; j < n; j++) {
            System.arraycopy(k, first + j * kvDim, s.keys, j * dhPad, dh);
        }
        // the transposes gather one vector of keys (rows kvDim apart) per entry e
        int j = 0;
        for (; j + L <= n; j += L) {
            int at = first + j * kvDim;
            for (int e = 0; e < dh; e++) {
                FloatVector.fromArray(S, k, at + e, rowOffsets, 0).intoArray(s.keysT, e * nPad + j);
                FloatVector.fromArray(S, v, at + e, rowOffsets, 0).intoArray(s.valuesT, e * nPad + j);
            }
        }
        for (; j < n; j++) {
            int row = first + j * kvDim;
            for (int e = 0; e < dh; e++) {
                s.keysT[e * nPad + j] = k[row + e];
                s.valuesT[e * nPad + j] = v[row + e];
            }
        }
    }

    /**
     * Query rows i0 .. i0+QB-1 of head h (rows past the sequence are zero, so they add nothing): recompute the
     * probabilities p from the log-sum-exp, then ds = p * (dout . v_j - dout . out) * scale, dq = ds . K,
     * dK += ds^T . Q, dV += p^T . dOut. Keys past the block's last row are invisible to all its rows.
     */
    private void backwardBlock(Scratch s, int b, int h, int i0) {
        int qDim = nHeads * dh;
        float scale = (float) (1 / Math.sqrt(dh));
        int rowsHere = Math.min(QB, n - i0);
        int keys = i0 + rowsHere;
        int keysPad = roundUp(keys);
        Arrays.fill(s.q, 0, QB * dhPad, 0f);
        Arrays.fill(s.dOut, 0, QB * dhPad, 0f);
        int r0 = (b * n + i0) * qDim + h * dh;
        for (int m = 0; m < rowsHere; m++) {
            System.arraycopy(q, r0 + m * qDim, s.q, m * dhPad, dh);
            System.arraycopy(dout, r0 + m * qDim, s.dOut, m * dhPad, dh);
        }
        float[] p = s.probs;
        float[] ds = s.dScores;
        TileProduct.multiply(p, 0, nPad, s.q, 0, dhPad, 1, s.keysT, 0, nPad, QB, keysPad, dh, false);
        TileProduct.multiply(ds, 0, nPad, s.dOut, 0, dhPad, 1, s.valuesT, 0, nPad, QB, keysPad, dh, false);
        FloatVector scaleV = FloatVector.broadcast(S, scale);
        for (int m = 0; m < QB; m++) {
            int base = m * nPad;
            if (m >= rowsHere) {
                Arrays.fill(p, base, base + keysPad, 0f);
                Arrays.fill(ds, base, base + keysPad, 0f);
                continue;
            }
            int visible = i0 + m + 1;
            VectorMath.exp(p, base, p, base, visible, scale, lse[(b * nHeads + h) * n + i0 + m]);
            Arrays.fill(p, base + visible, base + keysPad, 0f);
            FloatVector delta = FloatVector.broadcast(S, s.delta[i0 + m]);
            for (int j = 0; j < keysPad; j += L) {
                FloatVector.fromArray(S, ds, base + j).sub(delta).mul(FloatVector.fromArray(S, p, base + j)).mul(scaleV)
                        .intoArray(ds, base + j);
            }
        }
        TileProduct.multiply(s.dq, 0, dhPad, ds, 0, nPad, 1, s.keys, 0, dhPad, QB, dhPad, keys, false);
        for (int m = 0; m < rowsHere; m++) {
            System.arraycopy(s.dq, m * dhPad, dq, r0 + m * qDim, dh);
        }
        TileProduct.multiply(s.dKeys, 0, dhPad, ds, 0, 1, nPad, s.q, 0, dhPad, keysPad, dhPad, QB, true);
        TileProduct.multiply(s.dValues, 0, dhPad, p, 0, 1, nPad, s.dOut, 0, dhPad, keysPad, dhPad, QB, true);
    }
}
