package dev.mod.plan;

import dev.mod.ModException;
import dev.mod.model.MemoryBudget;
import dev.mod.model.ModelConfig;

import java.util.Arrays;

/**
 * The keys (after RoPE) and values each layer keeps for each sequence, in the order the tokens came, with
 * their original positions. A dense layer keeps every token; a routed layer keeps only the tokens routed
 * into it, since a token that skipped the block is never attended to there. Every layer's rows start small
 * and double when full (up to the context), so memory follows the tokens held, not the model's max_seq_len;
 * each growth is checked against Java's array limit and the JVM's heap before it allocates.
 *
 * Keys are stored transposed, [Hkv * dh, capacity]: a decode step's scores against all cached keys are
 * then broadcast-FMAs along contiguous rows, with no horizontal sums. Values stay [rows, Hkv * dh].
 */
public final class KvCache {
    private static final int MIN_ROWS = 16;
    /** Rows a dense layer starts with: a prompt of up to this many tokens never grows the cache. */
    private static final int DENSE_ROWS = 256;

    private final ModelConfig config;
    private final int kvDim;
    private final int context;
    private final float[][][] keys;      // [layer][sequence][kvDim * capacity], transposed
    private final float[][][] values;    // [layer][sequence][rows * kvDim]
    private final int[][][] positions;   // [layer][sequence][rows]
    private final int[][] lengths;       // [layer][sequence]

    public KvCache(ModelConfig config, int sequences, int context) {
        this.config = config;
        this.kvDim = config.kvDim();
        this.context = context;
        int layers = config.nLayers();
        keys = new float[layers][sequences][];
        values = new float[layers][sequences][];
        positions = new int[layers][sequences][];
        lengths = new int[layers][sequences];
        long startRows = 0;
        for (int layer = 0; layer < layers; layer++) {
            startRows += (long) sequences * startRows(layer);
        }
        MemoryBudget.check("the KV cache's first " + startRows + " rows of keys and values",
                startRows * (2L * kvDim * Float.BYTES + Integer.BYTES));
        for (int layer = 0; layer < layers; layer++) {
            int rows = startRows(layer);
            for (int s = 0; s < sequences; s++) {
                keys[layer][s] = new float[rows * kvDim];
                values[layer][s] = new float[rows * kvDim];
                positions[layer][s] = new int[rows];
            }
        }
    }

    // A routed layer starts at twice its share of a DENSE_ROWS prompt, a dense one at DENSE_ROWS (both at most the context).
    private int startRows(int layer) {
        return Math.min(context, config.isRouted(layer)
                ? Math.max(MIN_ROWS, 2 * config.capacityTokens(Math.min(context, DENSE_ROWS)))
                : DENSE_ROWS);
    }

    /** Rows layer keeps for sequence s. */
    public int length(int layer, int s) {
        return lengths[layer][s];
    }

    /** keys^T [Hkv * dh, capacity(layer, s)] of a layer and sequence; columns past length() are free space. */
    public float[] keysT(int layer, int s) {
        return keys[layer][s];
    }

    /** Rows the layer's cache for sequence s has room for: the row stride of keysT. */
    public int capacity(int layer, int s) {
        return positions[layer][s].length;
    }

    public float[] values(int layer, int s) {
        return values[layer][s];
    }

    /** The original position of row j of a layer's cache for sequence s. */
    public int position(int layer, int s, int j) {
        return positions[layer][s][j];
    }

    // keys[layer][s] += k[row, kvDim], values[layer][s] += v[row, kvDim], at position pos
    void append(int layer, int s, float[] k, float[] v, int row, int pos) {
        int n = lengths[layer][s];
        int capacity = positions[layer][s].length;
        if (n == capacity) {
            int rows = (int) Math.min(context, 2L * n);
            checkGrowth(capacity, rows);
            float[] grown = new float[kvDim * rows];
            for (int c = 0; c < kvDim; c++) {
                System.arraycopy(keys[layer][s], c * capacity, grown, c * rows, n);
            }
            keys[layer][s] = grown;
            values[layer][s] = Arrays.copyOf(values[layer][s], rows * kvDim);
            positions[layer][s] = Arrays.copyOf(positions[layer][s], rows);
            capacity = rows;
        }
        float[] keysT = keys[layer][s];
        for (int c = 0; c < kvDim; c++) {
            keysT[c * capacity + n] = k[row * kvDim + c];
        }
        System.arraycopy(v, row * kvDim, values[layer][s], n * kvDim, kvDim);
        positions[layer][s][n] = pos;
        lengths[layer][s] = n + 1;
    }

    // Before one layer's rows for one sequence grow from `from` to `to`: they fit a Java array, and the whole
    // cache, grown, fits the JVM's heap.
    private void checkGrowth(int from, int to) {
        if ((long) to * kvDim > ModelConfig.MAX_ARRAY) {
            throw new ModException("the KV cache would need " + (long) to * kvDim + " floats for one layer and sequence, above "
                    + "Java's array limit of " + ModelConfig.MAX_ARRAY);
        }
        long rows = to - from;
        for (int[][] layer : positions) {
            for (int[] p : layer) {
                rows += p.length;
            }
        }
        MemoryBudget.check("the KV cache's " + rows + " rows of keys and values", rows * (2L * kvDim * Float.BYTES + Integer.BYTES));
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

    /** Bytes of keys and values held for the tokens in the cache (F32), all layers and sequences. */
    public long bytes() {
        long rows = 0;
        for (int[] layer : lengths) {
            for (int n : layer) {
                rows += n;
            }
        }
        return rows * 2L * kvDim * Float.BYTES;
    }

    /** What a dense model of this config (every layer keeps every token) holds for the given tokens. */
    public long denseBytes(long tokens) {
        return tokens * config.nLayers() * 2L * kvDim * Float.BYTES;
    }
}
