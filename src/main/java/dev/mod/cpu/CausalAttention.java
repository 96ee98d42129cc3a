package dev.mod.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;

/**
 * Causal softmax attention over the rows of each sequence, as register-blocked products with an online softmax
 * (the flash-attention order). A chunk is a block of {@link #QB} query rows of one head; it walks the keys it may
 * see in tiles of {@link #KT}: scores = K Q^T of the tile on {@link TileProduct}, the softmax step, then
 * out += P V of the tile on the same kernel. Tiles past the block's last row are never touched; only the tile
 * holding the block's own rows (the diagonal) is masked.
 *
 * Scores are kept transposed, one row per key and one lane per query row, so the softmax runs down the keys with
 * every query row in its own lane: the running max, the sum and the rescaling of each query row are lane-wise,
 * with no horizontal reductions, and the query block (Q^T, [dh, QB]) that every score product reads stays in L1.
 * Scratch per worker is a few tiles, so memory grows with T (the keys and values padded, once per call), not T^2.
 *
 * Rows must be in ascending position order within each sequence (the plan guarantees it: dense layers use
 * 0..T-1, routed layers the ascending selection), so "position j <= position i" is "j <= i". A masked key is
 * skipped, never added with weight 0, so that a non-finite value at a later position never reaches an earlier
 * one. Each chunk sums in a fixed order, so results do not depend on the thread count.
 */
public final class CausalAttention implements WorkerPool.Task {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    /** Query rows per chunk, the lanes of a score row: 4 vectors at 512 bits, one full register tile of the product. */
    private static final int QB = Math.max(4 * L, 32);
    /** Keys per tile, a multiple of QB, so that a block's own rows lie in one tile. */
    private static final int KT = 2 * QB;
    /** 0, 1, .. L-1: the lane numbers, to mask a diagonal score row. */
    private static final FloatVector LANES = FloatVector.zero(S).addIndex(1);

    /** One worker's scratch, dhPad = dh rounded up to whole vectors. */
    private static final class Scratch {
        float[] qT = new float[0];                  // [dh, QB] the block's query rows / sqrt(dh), transposed; 0 past the end
        final float[] scores = new float[KT * QB];  // [KT, QB] one tile's scores, then its probabilities
        float[] acc = new float[0];                 // [QB, dhPad] the output so far, not yet divided by the sum
        final float[] max = new float[QB];          // running max of each query row's scores
        final float[] sum = new float[QB];          // running sum of exp(score - max)
        final float[] newMax = new float[QB];       // the max after the tile at hand
        final float[] alpha = new float[QB];        // the factor a tile's new max puts on the output so far

        void ensure(int dh, int dhPad) {
            if (qT.length < dh * QB || acc.length < QB * dhPad) {
                qT = new float[dh * QB];
                acc = new float[QB * dhPad];
            }
        }
    }

    private final Scratch[] scratch;
    /** [B, Hkv, nPad, dhPad]: each kv head's keys, rows padded with zeros to whole vectors. */
    private float[] keys = new float[0];
    /** [B, Hkv, nPad, dhPad]: each kv head's values, padded the same way. */
    private float[] values = new float[0];

    private boolean loading;
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
    /** n rounded up to whole key tiles. */
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
        this.nPad = (n + KT - 1) / KT * KT;
        this.dhPad = (dh + L - 1) / L * L;
        int needed = batch * nKvHeads * nPad * dhPad;
        if (keys.length < needed) {
            keys = new float[needed];
            values = new float[needed];
        }
        for (Scratch s : scratch) {
            s.ensure(dh, dhPad);
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
        loading = true;
        pool.run(this, batch * nKvHeads);
        loading = false;
        pool.run(this, batch * nHeads * queryBlocks);
        this.out = null;
        this.lse = null;
        this.q = null;
        this.k = null;
        this.v = null;
    }

    @Override
    public void run(int chunk, int worker) {
        if (loading) {
            loadKeysAndValues(chunk / nKvHeads, chunk % nKvHeads);
        } else {
            // the last blocks of a sequence see the most keys: they go first, so that no long chunk is left for the end
            int block = queryBlocks - 1 - chunk % queryBlocks;
            int bh = chunk / queryBlocks;
            attendBlock(scratch[worker], bh / nHeads, bh % nHeads, block * QB);
        }
    }

    // keys[b, g, j, e] = k[b, j, g * dh + e] and values[b, g, j, e] = v[b, j, g * dh + e], padding zero
    private void loadKeysAndValues(int b, int g) {
        int kvDim = nKvHeads * dh;
        int base = (b * nKvHeads + g) * nPad * dhPad;
        for (int j = 0; j < n; j++) {
            int src = (b * n + j) * kvDim + g * dh;
            int dst = base + j * dhPad;
            System.arraycopy(k, src, keys, dst, dh);
            System.arraycopy(v, src, values, dst, dh);
            Arrays.fill(keys, dst + dh, dst + dhPad, 0f);
            Arrays.fill(values, dst + dh, dst + dhPad, 0f);
        }
        Arrays.fill(keys, base + n * dhPad, base + nPad * dhPad, 0f);
        Arrays.fill(values, base + n * dhPad, base + nPad * dhPad, 0f);
    }

    // out rows i0 .. i0+QB-1 (those inside the sequence) of head h in sequence b
    private void attendBlock(Scratch s, int b, int h, int i0) {
        int rows = Math.min(QB, n - i0);
        int rowsPad = (rows + 3) & ~3;
        int g = h / (nHeads / nKvHeads);
        int qDim = nHeads * dh;
        int kv = (b * nKvHeads + g) * nPad * dhPad;
        int first = (b * n + i0) * qDim + h * dh;
        float scale = (float) (1.0 / Math.sqrt(dh));
        Arrays.fill(s.qT, 0, dh * QB, 0f);
        for (int m = 0; m < rows; m++) {
            for (int e = 0; e < dh; e++) {
                s.qT[e * QB + m] = q[first + m * qDim + e] * scale;
            }
        }
        Arrays.fill(s.acc, 0, rowsPad * dhPad, 0f);
        Arrays.fill(s.max, Float.NEGATIVE_INFINITY);
        Arrays.fill(s.sum, 0f);
        int last = i0 + rows; // keys 0 .. last-1 are visible to some row of the block
        for (int kt0 = 0; kt0 < last; kt0 += KT) {
            int count = Math.min(KT, last - kt0);
            // scores of the tile's keys (4 at a time; keys past the sequence are zero) against every query row
            TileProduct.multiply(s.scores, 0, QB, keys, kv + kt0 * dhPad, dhPad, 1, s.qT, 0, QB, (count + 3) & ~3, QB, dh, false);
            // key kt0 + r is visible to query rows m >= r - d
            int d = i0 - kt0;
            softmaxStep(s, count, d);
            rescale(s, rows);
            if (kt0 + count <= i0) {
                // every query row sees every key of the tile
                TileProduct.multiply(s.acc, 0, dhPad, s.scores, 0, 1, QB, values, kv + kt0 * dhPad, dhPad, rowsPad, dhPad, count, true);
            } else {
                diagonalValues(s, kv + kt0 * dhPad, d, rows, rowsPad);
            }
        }
        int lseRow = (b * nHeads + h) * n + i0;
        for (int m = 0; m < rows; m++) {
            float inv = 1f / s.sum[m];
            int o = first + m * qDim;
            for (int e = 0; e < dh; e++) {
                out[o + e] = s.acc[m * dhPad + e] * inv;
            }
            if (lse != null) {
                lse[lseRow + m] = (float) (s.max[m] + Math.log(s.sum[m]));
            }
        }
    }

    /**
     * The online-softmax step of a tile of `count` keys, lane-wise over the query rows: each row's max is raised to
     * its largest visible score, alpha (the factor on the sum and output so far) is exp(old max - new max), and
     * the tile's scores become exp(score - max), added to the sums. Scores come scaled by 1/sqrt(dh) (the query
     * block is scaled once, which saves a multiply per score). Key r is visible to query rows m >= r - d, so rows
     * r <= d are visible to all; a masked score is set to -infinity first, so its exp is the smallest float exp
     * gives (about 1e-38, lost in any sum of 1 or more) and a non-finite masked score reaches nothing. Masked
     * probabilities are never multiplied by a value: the diagonal's products skip their keys.
     * No vector crosses a method boundary here: a vector returned by a method that C2 does not inline is boxed.
     */
    private void softmaxStep(Scratch s, int count, int d) {
        for (int c = 0; c < QB; c += L) {
            FloatVector max = FloatVector.fromArray(S, s.max, c);
            // rows visible to every lane of these columns, then the masked ones
            int all = Math.min(count, d + c + 1);
            for (int r = 0; r < all; r++) {
                FloatVector x = FloatVector.fromArray(S, s.scores, r * QB + c);
                max = max.blend(x, x.compare(VectorOperators.GT, max));
            }
            for (int r = all; r < count; r++) {
                FloatVector x = FloatVector.fromArray(S, s.scores, r * QB + c);
                VectorMask<Float> visible = LANES.compare(VectorOperators.GE, (float) (r - d - c));
                max = max.blend(x, x.compare(VectorOperators.GT, max).and(visible));
                x.blend(Float.NEGATIVE_INFINITY, visible.not()).intoArray(s.scores, r * QB + c);
            }
            max.intoArray(s.newMax, c);
        }
        // a lane whose max did not change gets exactly 1; one that had no max yet, 0 (nothing to rescale)
        for (int m = 0; m < QB; m++) {
            float old = s.max[m];
            float max = s.newMax[m];
            float alpha = max == old ? 1f : old == Float.NEGATIVE_INFINITY ? 0f : VectorMath.exp(old - max);
            s.alpha[m] = alpha;
            s.sum[m] *= alpha;
            s.max[m] = max;
        }
        VectorMath.expLanes(s.scores, count, QB, s.max, s.sum);
    }

    // each query row's output so far times its alpha, where alpha is not 1
    private void rescale(Scratch s, int rows) {
        for (int m = 0; m < rows; m++) {
            float a = s.alpha[m];
            if (a != 1f) {
                FloatVector alpha = FloatVector.broadcast(S, a);
                for (int e = m * dhPad; e < (m + 1) * dhPad; e += L) {
                    FloatVector.fromArray(S, s.acc, e).mul(alpha).intoArray(s.acc, e);
                }
            }
        }
    }

    /**
     * out += P V over the diagonal tile, 4 query rows at a time: the keys up to the group's first row are visible
     * to all 4 rows (one product); each of the next 3 keys only to the rows at or after it, added row by row.
     */
    private void diagonalValues(Scratch s, int vBase, int d, int rows, int rowsPad) {
        for (int r = 0; r < rowsPad; r += 4) {
            int shared = d + r + 1;
            TileProduct.multiply(s.acc, r * dhPad, dhPad, s.scores, r, 1, QB, values, vBase, dhPad, 4, dhPad, shared, true);
            for (int t = 1; t < 4 && r + t < rows; t++) {
                int key = shared + t - 1; // visible to query rows r + t and later
                for (int m = r + t; m < Math.min(r + 4, rows); m++) {
                    FloatVector p = FloatVector.broadcast(S, s.scores[key * QB + m]);
                    for (int e = 0; e < dhPad; e += L) {
                        FloatVector.fromArray(S, values, vBase + key * dhPad + e).fma(p, FloatVector.fromArray(S, s.acc, m * dhPad + e))
                                .intoArray(s.acc, m * dhPad + e);
                    }
                }
            }
        }
    }
}
