package dev.mod.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;

/**
 * Causal softmax attention over the rows of each sequence, as register-blocked products with an online softmax
 * (the flash-attention order). A chunk is a block of {@link #QB} query rows of one head; it walks the keys it may
 * see in tiles of {@link #KT}: scores = Q K^T of the tile on {@link TileProduct}, each row's running max and sum
 * updated and its accumulated output rescaled when the max grows, then out += P V of the tile on the same kernel.
 * Tiles past the block's last row are never touched; only the tile holding the block's own rows (the diagonal)
 * is masked. Scratch per worker is a few tiles, so memory grows with T (the keys transposed and the values
 * padded, once per call), not T^2.
 *
 * Rows must be in ascending position order within each sequence (the plan guarantees it: dense layers use
 * 0..T-1, routed layers the ascending selection), so "position j <= position i" is "j <= i". A masked key is
 * skipped, never added with weight 0, so that a non-finite value at a later position never reaches an earlier
 * one. Each chunk sums in a fixed order, so results do not depend on the thread count.
 */
public final class CausalAttention implements WorkerPool.Task {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    /** Query rows per chunk: every key tile read from cache serves this many rows. */
    private static final int QB = 32;
    /** Keys per tile, a multiple of QB (so a block's rows all lie in one tile) and of PW. */
    private static final int KT = 128;
    /** Keys per panel of the transposed keys: the width of {@link TileProduct}'s register tile. */
    private static final int PW = 4 * L;

    /** One worker's scratch, dhPad = dh rounded up to whole vectors. */
    private static final class Scratch {
        float[] q = new float[0];              // [QB, dhPad] the block's query rows, zero past the sequence and dh
        final float[] scores = new float[QB * KT]; // [QB, KT] one tile's scores, then its probabilities
        float[] acc = new float[0];            // [QB, dhPad] the output so far, not yet divided by the sum
        final float[] max = new float[QB];     // running max of each row's raw scores
        final float[] sums = new float[QB * L]; // running sums of exp(scale * (score - max)), by lane

        void ensure(int dhPad) {
            if (q.length < QB * dhPad) {
                q = new float[QB * dhPad];
                acc = new float[QB * dhPad];
            }
        }
    }

    private final Scratch[] scratch;
    /**
     * [B, Hkv, nPad / PW, dh, PW]: each kv head's keys transposed in panels of PW keys, so that scores come out of
     * broadcast FMAs and a tile of the product reads its keys from one contiguous run of memory.
     */
    private float[] keysT = new float[0];
    /** [B, Hkv, nPad, dhPad]: each kv head's values, rows padded with zeros to whole vectors. */
    private float[] values = new float[0];

    private boolean transposing;
    private float[] out;
    private float[] q;
    private float[] k;
    private float[] v;
    private int n;
    private int nHeads;
    private int nKvHeads;
    private int dh;
    private int dhPad;
    private int queryBlocks;
    /** n rounded up to whole panels. */
    private int nPad;

    /** Where each row's log-sum-exp of its scaled scores goes, [B, H, n] (training keeps it); null: nowhere. */
    private float[] lse;

    public CausalAttention(int workers) {
        scratch = new Scratch[workers];
        for (int w = 0; w < workers; w++) {
            scratch[w] = new Scratch();
        }
    }

    // out[B, n, H * dh] = softmax(q k^T / sqrt(dh), causal) v; q[B, n, H * dh], k and v [B, n, Hkv * dh]
    void attend(WorkerPool pool, float[] out, float[] q, float[] k, float[] v,
                int batch, int n, int nHeads, int nKvHeads, int dh) {
        attend(pool, out, null, q, k, v, batch, n, nHeads, nKvHeads, dh);
    }

    // the same, and lse[B, H, n] = log sum_j exp(q_i . k_j / sqrt(dh)) of each row (for the backward pass)
    public void attend(WorkerPool pool, float[] out, float[] lse, float[] q, float[] k, float[] v,
                       int batch, int n, int nHeads, int nKvHeads, int dh) {
        this.nPad = (n + PW - 1) / PW * PW;
        this.dhPad = roundUp(dh);
        int needed = batch * nKvHeads * nPad * dhPad;
        if (keysT.length < needed) {
            keysT = new float[needed];
            values = new float[needed];
        }
        for (Scratch s : scratch) {
            s.ensure(dhPad);
        }
        this.lse = lse;
        this.out = out;
        this.q = q;
        this.k = k;
        this.v = v;
        this.n = n;
        this.nHeads = nHeads;
        this.nKvHeads = nKvHeads;
        this.dh = dh;
        this.queryBlocks = (n + QB - 1) / QB;
        transposing = true;
        pool.run(this, batch * nKvHeads);
        transposing = false;
        pool.run(this, batch * nHeads * queryBlocks);
        this.out = null;
        this.lse = null;
        this.q = null;
        this.k = null;
        this.v = null;
    }

    private static int roundUp(int x) {
        return (x + L - 1) / L * L;
    }

    @Override
    public void run(int chunk, int worker) {
        if (transposing) {
            loadKeysAndValues(chunk / nKvHeads, chunk % nKvHeads);
        } else {
            // the last blocks of a sequence see the most keys: they go first, so that no long chunk is left for the end
            int block = queryBlocks - 1 - chunk % queryBlocks;
            int bh = chunk / queryBlocks;
            attendBlock(scratch[worker], bh / nHeads, bh % nHeads, block * QB);
        }
    }

    // keysT[b, g, j / PW, e, j % PW] = k[b, j, g * dh + e] and values[b, g, j, e] = v[b, j, g * dh + e], padding zero
    private void loadKeysAndValues(int b, int g) {
        int kvDim = nKvHeads * dh;
        int kt = (b * nKvHeads + g) * dh * nPad;
        int vt = (b * nKvHeads + g) * nPad * dhPad;
        for (int j = 0; j < n; j++) {
            int src = (b * n + j) * kvDim + g * dh;
            for (int e = 0; e < dh; e++) {
                keysT[kt + j / PW * dh * PW + e * PW + j % PW] = k[src + e];
            }
            System.arraycopy(v, src, values, vt + j * dhPad, dh);
            Arrays.fill(values, vt + j * dhPad + dh, vt + (j + 1) * dhPad, 0f);
        }
        for (int j = n; j < nPad; j++) {
            for (int e = 0; e < dh; e++) {
                keysT[kt + j / PW * dh * PW + e * PW + j % PW] = 0f;
            }
        }
        Arrays.fill(values, vt + n * dhPad, vt + nPad * dhPad, 0f);
    }

    // out rows i0 .. i0+QB-1 (those inside the sequence) of head h in sequence b
    private void attendBlock(Scratch s, int b, int h, int i0) {
        int rows = Math.min(QB, n - i0);
        int rowsPad = (rows + 3) & ~3;
        int g = h / (nHeads / nKvHeads);
        int qDim = nHeads * dh;
        int kt = (b * nKvHeads + g) * dh * nPad;
        int vt = (b * nKvHeads + g) * nPad * dhPad;
        int first = (b * n + i0) * qDim + h * dh;
        float scale = (float) (1.0 / Math.sqrt(dh));
        Arrays.fill(s.q, 0, rowsPad * dhPad, 0f);
        for (int m = 0; m < rows; m++) {
            System.arraycopy(q, first + m * qDim, s.q, m * dhPad, dh);
        }
        Arrays.fill(s.acc, 0, rowsPad * dhPad, 0f);
        Arrays.fill(s.max, Float.NEGATIVE_INFINITY);
        Arrays.fill(s.sums, 0f);
        int last = i0 + rows; // keys 0 .. last-1 are visible to some row of the block
        for (int kt0 = 0; kt0 < last; kt0 += KT) {
            int kt1 = Math.min(kt0 + KT, last);
            // scores of every row of the block against the tile's keys (whole vectors of them; the keys past the
            // sequence are zero), then each row's online-softmax step over the keys it sees
            int width = roundUp(kt1 - kt0);
            for (int j = 0; j < width; j += PW) {
                TileProduct.multiply(s.scores, j, KT, s.q, 0, dhPad, 1, keysT, kt + (kt0 + j) * dh, PW, rowsPad,
                        Math.min(PW, width - j), dh, false);
            }
            for (int m = 0; m < rows; m++) {
                softmaxStep(s, m, Math.min(kt1, i0 + m + 1) - kt0, scale);
            }
            if (kt1 <= i0) {
                // every row sees every key of the tile
                TileProduct.multiply(s.acc, 0, dhPad, s.scores, 0, KT, 1, values, vt + kt0 * dhPad, dhPad, rowsPad, dhPad, kt1 - kt0, true);
            } else {
                diagonalValues(s, vt, i0, kt0, rows, rowsPad);
            }
        }
        int lseRow = (b * nHeads + h) * n + i0;
        for (int m = 0; m < rows; m++) {
            float sum = 0;
            for (int l = 0; l < L; l++) {
                sum += s.sums[m * L + l];
            }
            float inv = 1f / sum;
            int o = first + m * qDim;
            for (int e = 0; e < dh; e++) {
                out[o + e] = s.acc[m * dhPad + e] * inv;
            }
            if (lse != null) {
                lse[lseRow + m] = (float) (scale * s.max[m] + Math.log(sum));
            }
        }
    }

    /**
     * Row m of the tile, whose first `visible` keys it may see: its scores become exp(scale * (score - max)) with
     * max the row's running max, added to its sums; the sums and the output so far are rescaled when the max grows.
     */
    private void softmaxStep(Scratch s, int m, int visible, float scale) {
        int row = m * KT;
        float oldMax = s.max[m];
        float max = VectorMath.max(s.scores, row, visible, oldMax);
        float shift = scale * max;
        if (max > oldMax && oldMax != Float.NEGATIVE_INFINITY) {
            FloatVector alpha = FloatVector.broadcast(S, VectorMath.exp(scale * oldMax - shift));
            FloatVector.fromArray(S, s.sums, m * L).mul(alpha).intoArray(s.sums, m * L);
            for (int e = m * dhPad; e < (m + 1) * dhPad; e += L) {
                FloatVector.fromArray(S, s.acc, e).mul(alpha).intoArray(s.acc, e);
            }
        }
        VectorMath.expAndSum(s.scores, row, visible, scale, shift, s.sums, m * L);
        s.max[m] = max;
    }

    /**
     * out += P V over the diagonal tile, 4 rows at a time: the keys up to the group's first row are visible to
     * all 4 rows (one product); each of the next 3 keys only to the rows at or after it, added row by row.
     */
    private void diagonalValues(Scratch s, int vt, int i0, int kt0, int rows, int rowsPad) {
        for (int r = 0; r < rowsPad; r += 4) {
            int shared = i0 + r + 1 - kt0;
            TileProduct.multiply(s.acc, r * dhPad, dhPad, s.scores, r * KT, KT, 1, values, vt + kt0 * dhPad, dhPad, 4, dhPad, shared, true);
            for (int d = 1; d < 4 && r + d < rows; d++) {
                int key = shared + d - 1; // i0 + r + d, counted from kt0
                int vRow = vt + (kt0 + key) * dhPad;
                for (int m = r + d; m < Math.min(r + 4, rows); m++) {
                    FloatVector p = FloatVector.broadcast(S, s.scores[m * KT + key]);
                    for (int e = 0; e < dhPad; e += L) {
                        FloatVector.fromArray(S, values, vRow + e).fma(p, FloatVector.fromArray(S, s.acc, m * dhPad + e))
                                .intoArray(s.acc, m * dhPad + e);
                    }
                }
            }
        }
    }
}
