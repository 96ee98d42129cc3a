package dev.mod.plan;

import dev.mod.ModException;
import dev.mod.model.AttentionWeights;
import dev.mod.model.DType;
import dev.mod.model.MemoryBudget;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.Tensor;

import java.lang.reflect.Array;
import java.util.Arrays;

/**
 * The keys (after RoPE) and values each layer keeps for each sequence, in the order the tokens came, with
 * their original positions. A dense layer keeps every token; a routed layer keeps only the tokens routed
 * into it, since a token that skipped the block is never attended to there. Every layer's rows start small
 * and double when full (up to the context), so memory follows the tokens held, not the model's max_seq_len;
 * each growth is checked against Java's array limit and the JVM's heap before it allocates.
 *
 * Keys are stored transposed, [Hkv * dh, capacity]: a decode step's scores against all cached keys are
 * then broadcast-FMAs along contiguous rows, with no horizontal sums. Values are stored head by head,
 * [Hkv, capacity, dh], so that the values one head reads are one contiguous run (rows of all heads side by side
 * made each head's read a 256-byte piece every 2 KB on the bench model, at under half the streaming rate).
 *
 * The cache holds F32 or BF16 (keys and values rounded to nearest even as they are appended). A decode step
 * reads the whole cache, so BF16 halves what the cache costs a step (a third of a dense F32 step at context
 * 1024 on the bench model). BF16 values are paired in ints so that a vector of ints widens to two float vectors
 * with a shift and a mask: keys [Hkv * dh / 2, capacity] with dims e (low half) and e + 1 (high half) of key j
 * in column j; values [Hkv, (capacity + 1) / 2, dh] with rows 2m (low half) and 2m + 1 (high half) in row m.
 */
public final class KvCache {
    private static final int MIN_ROWS = 16;
    /** Rows a dense layer starts with: a prompt of up to this many tokens never grows the cache. */
    private static final int DENSE_ROWS = 256;

    private final ModelConfig config;
    private final DType type;
    private final int kvDim;
    private final int kvHeads;
    private final int dh;
    private final int context;
    private final float[][][] keys;      // F32: [layer][sequence][kvDim * capacity], transposed
    private final float[][][] values;    // F32: [layer][sequence][Hkv * capacity * dh], head by head
    private final int[][][] keyPairs;    // BF16: [layer][sequence][kvDim / 2 * capacity], transposed, dims paired
    private final int[][][] valuePairs;  // BF16: [layer][sequence][Hkv * (capacity + 1) / 2 * dh], head by head, rows paired
    private final int[][][] positions;   // [layer][sequence][capacity]
    private final int[][] lengths;       // [layer][sequence]

    /** An F32 cache. */
    public KvCache(ModelConfig config, int sequences, int context) {
        this(config, sequences, context, DType.F32);
    }

    /** A cache of F32 or BF16 keys and values. */
    public KvCache(ModelConfig config, int sequences, int context, DType type) {
        if (type != DType.F32 && type != DType.BF16) {
            throw new ModException("a KV cache holds F32 or BF16, not " + type);
        }
        this.config = config;
        this.type = type;
        this.kvDim = config.kvDim();
        this.kvHeads = config.nKvHeads();
        this.dh = config.headDim();
        this.context = context;
        int layers = config.nLayers();
        boolean half = type == DType.BF16;
        keys = half ? null : new float[layers][sequences][];
        values = half ? null : new float[layers][sequences][];
        keyPairs = half ? new int[layers][sequences][] : null;
        valuePairs = half ? new int[layers][sequences][] : null;
        positions = new int[layers][sequences][];
        lengths = new int[layers][sequences];
        long startRows = 0;
        for (int layer = 0; layer < layers; layer++) {
            startRows += (long) sequences * startRows(layer);
        }
        MemoryBudget.check("the KV cache's first " + startRows + " rows of keys and values", startRows * rowBytes());
        for (int layer = 0; layer < layers; layer++) {
            int rows = startRows(layer);
            for (int s = 0; s < sequences; s++) {
                allocate(layer, s, rows);
            }
        }
    }

    /**
     * The cache generation keeps by default for a model: BF16 when every layer's k and v projections are 16-bit (a
     * model stored at that precision, run for speed), else F32. Plans that check results (forward, calibration, the
     * study's losses) keep F32 unless asked.
     */
    public static DType typeFor(Model model) {
        for (int layer = 0; layer < model.config().nLayers(); layer++) {
            AttentionWeights<Tensor> w = model.layer(layer).attention();
            if (w.wk().dtype().bytes() != 2 || w.wv().dtype().bytes() != 2) {
                return DType.F32;
            }
        }
        return DType.BF16;
    }

    // A routed layer starts at twice its share of a DENSE_ROWS prompt, a dense one at DENSE_ROWS (both at most the context).
    private int startRows(int layer) {
        return Math.min(context, config.isRouted(layer)
                ? Math.max(MIN_ROWS, 2 * config.capacityTokens(Math.min(context, DENSE_ROWS)))
                : DENSE_ROWS);
    }

    private long rowBytes() {
        return 2L * kvDim * type.bytes() + Integer.BYTES;
    }

    // empty rows [rows] for a layer and sequence, in this cache's type
    private void allocate(int layer, int s, int rows) {
        if (type == DType.BF16) {
            keyPairs[layer][s] = new int[kvDim / 2 * rows];
            valuePairs[layer][s] = new int[kvHeads * ((rows + 1) / 2) * dh];
        } else {
            keys[layer][s] = new float[kvDim * rows];
            values[layer][s] = new float[kvHeads * rows * dh];
        }
        positions[layer][s] = new int[rows];
    }

    /** F32 or BF16. */
    public DType type() {
        return type;
    }

    /** Rows layer keeps for sequence s. */
    public int length(int layer, int s) {
        return lengths[layer][s];
    }

    /** F32: keys^T [Hkv * dh, capacity(layer, s)] of a layer and sequence; columns past length() are free space. */
    public float[] keysT(int layer, int s) {
        return keys[layer][s];
    }

    /** F32: values [Hkv, capacity(layer, s), dh], head by head. */
    public float[] values(int layer, int s) {
        return values[layer][s];
    }

    /** BF16: keys^T [Hkv * dh / 2, capacity(layer, s)], dims e and e + 1 of key j in the low and high half of column j. */
    public int[] keyPairsT(int layer, int s) {
        return keyPairs[layer][s];
    }

    /** BF16: values [Hkv, (capacity(layer, s) + 1) / 2, dh], head by head, rows 2m and 2m + 1 in the low and high half of row m. */
    public int[] valuePairs(int layer, int s) {
        return valuePairs[layer][s];
    }

    /** Rows the layer's cache for sequence s has room for: the row stride of the transposed keys. */
    public int capacity(int layer, int s) {
        return positions[layer][s].length;
    }

    /** The original position of row j of a layer's cache for sequence s. */
    public int position(int layer, int s, int j) {
        return positions[layer][s][j];
    }

    // keys[layer][s] += k[row, kvDim], values[layer][s] += v[row, kvDim], at position pos
    void append(int layer, int s, float[] k, float[] v, int row, int pos) {
        int n = lengths[layer][s];
        if (n == positions[layer][s].length) {
            grow(layer, s, n);
        }
        int capacity = positions[layer][s].length;
        int at = row * kvDim;
        if (type == DType.BF16) {
            int[] kp = keyPairs[layer][s];
            for (int c = 0; c < kvDim; c += 2) {
                kp[c / 2 * capacity + n] = (Tensor.bf16(k[at + c]) & 0xFFFF) | Tensor.bf16(k[at + c + 1]) << 16;
            }
            int[] vp = valuePairs[layer][s];
            int pairRows = (capacity + 1) / 2;
            int shift = n % 2 == 0 ? 0 : 16;
            int keep = n % 2 == 0 ? 0xFFFF0000 : 0xFFFF;
            for (int c = 0; c < kvDim; c++) {
                int i = (c / dh * pairRows + n / 2) * dh + c % dh;
                vp[i] = (vp[i] & keep) | (Tensor.bf16(v[at + c]) & 0xFFFF) << shift;
            }
        } else {
            float[] keysT = keys[layer][s];
            for (int c = 0; c < kvDim; c++) {
                keysT[c * capacity + n] = k[at + c];
            }
            for (int h = 0; h < kvHeads; h++) {
                System.arraycopy(v, at + h * dh, values[layer][s], (h * capacity + n) * dh, dh);
            }
        }
        positions[layer][s][n] = pos;
        lengths[layer][s] = n + 1;
    }

    /** The float in the low (half 0) or the high (half 1) 16 bits of a BF16 pair. */
    public static float unpair(int pair, int half) {
        return Float.intBitsToFloat(half == 0 ? pair << 16 : pair & 0xFFFF0000);
    }

    // x[rows, kvDim] in place: each value as this cache keeps it (rounded to BF16 in a BF16 cache)
    void round(float[] x, int rows) {
        if (type == DType.BF16) {
            for (int i = 0; i < rows * kvDim; i++) {
                x[i] = Float.intBitsToFloat(Tensor.bf16(x[i]) << 16);
            }
        }
    }

    // a layer's full rows for sequence s (n of them) doubled, at most to the context, keeping what they hold
    private void grow(int layer, int s, int n) {
        int rows = (int) Math.min(context, 2L * n);
        checkGrowth(n, rows);
        if (type == DType.BF16) {
            int[] grown = new int[kvDim / 2 * rows];
            for (int c = 0; c < kvDim / 2; c++) {
                System.arraycopy(keyPairs[layer][s], c * n, grown, c * rows, n);
            }
            keyPairs[layer][s] = grown;
            valuePairs[layer][s] = grownByHead(valuePairs[layer][s], (n + 1) / 2 * dh, (rows + 1) / 2 * dh);
        } else {
            float[] grown = new float[kvDim * rows];
            for (int c = 0; c < kvDim; c++) {
                System.arraycopy(keys[layer][s], c * n, grown, c * rows, n);
            }
            keys[layer][s] = grown;
            values[layer][s] = grownByHead(values[layer][s], n * dh, rows * dh);
        }
        positions[layer][s] = Arrays.copyOf(positions[layer][s], rows);
    }

    // values held head by head (a float[] or an int[] of pairs), [Hkv, from], in runs of `to` per head, each head's run
    // kept at its start
    @SuppressWarnings("unchecked")
    private <A> A grownByHead(A held, int from, int to) {
        A grown = (A) Array.newInstance(held.getClass().getComponentType(), kvHeads * to);
        for (int h = 0; h < kvHeads; h++) {
            System.arraycopy(held, h * from, grown, h * to, from);
        }
        return grown;
    }

    // Before one layer's rows for one sequence grow from `from` to `to`: they fit a Java array, and the whole
    // cache, grown, fits the JVM's heap.
    private void checkGrowth(int from, int to) {
        if ((long) to * kvDim > ModelConfig.MAX_ARRAY) {
            throw new ModException("the KV cache would need " + (long) to * kvDim + " values for one layer and sequence, above "
                    + "Java's array limit of " + ModelConfig.MAX_ARRAY);
        }
        long rows = to - from;
        for (int[][] layer : positions) {
            for (int[] p : layer) {
                rows += p.length;
            }
        }
        MemoryBudget.check("the KV cache's " + rows + " rows of keys and values", rows * rowBytes());
    }

    /** Forgets sequence s's tokens at positions >= position in every layer. */
    void truncate(int s, int position) {
        for (int layer = 0; layer < lengths.length; layer++) {
            int n = lengths[layer][s];
            while (n > 0 && positions[layer][s][n - 1] >= position) {
                n--;
            }
            lengths[layer][s] = n;
        }
    }

    /** Bytes of keys and values held for the tokens in the cache (in its type), all layers and sequences. */
    public long bytes() {
        long rows = 0;
        for (int[] layer : lengths) {
            for (int n : layer) {
                rows += n;
            }
        }
        return rows * 2L * kvDim * type.bytes();
    }

    /** What a dense model of this config (every layer keeps every token) holds for the given tokens, in this cache's type. */
    public long denseBytes(long tokens) {
        return tokens * config.nLayers() * 2L * kvDim * type.bytes();
    }
}
