package dev.mod.tornado;

import dev.mod.ModException;
import dev.mod.model.ModelConfig;
import dev.mod.plan.SequenceLengths;
import uk.ac.manchester.tornado.api.DataRange;
import uk.ac.manchester.tornado.api.TornadoExecutionResult;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Map;

/**
 * The host's view of a {@link TornadoCausalPlan}'s device after a run: nothing moves until asked, and then only what is
 * asked for, through the last graph's result: the chunk's logits, a routed layer's router logits, and words of the
 * state ({@link CausalLayout}): the rows each layer routed, the routing counts, the positions each cache holds.
 */
final class CausalReadBack {
    private final ModelConfig config;
    private final int sequences;
    private final int maxRows;
    private final int context;
    private final SequenceLengths lengths;
    /** Index of each routed layer among the routed layers (its rows in the routing buffer). */
    private final Map<Integer, Integer> routedIndex;
    private final IntArray state;
    private final FloatArray routing;
    private final FloatArray logitsDevice;
    private final float[] logits;
    private final long[] countBase;

    private TornadoExecutionResult result;
    private int rows;
    private boolean logitsFetched;
    private boolean truncatedSinceRun;
    private long fetchedBytes;

    CausalReadBack(ModelConfig config, int sequences, int maxRows, int context, SequenceLengths lengths,
                   Map<Integer, Integer> routedIndex, IntArray state, FloatArray routing, FloatArray logitsDevice) {
        this.config = config;
        this.sequences = sequences;
        this.maxRows = maxRows;
        this.context = context;
        this.lengths = lengths;
        this.routedIndex = routedIndex;
        this.state = state;
        this.routing = routing;
        this.logitsDevice = logitsDevice;
        this.logits = new float[maxRows * config.vocabSize()];
        this.countBase = new long[2 * config.nLayers()];
    }

    /** A run of n rows starts: what the last one left is gone. */
    void starting(int n) {
        rows = n;
        result = null;
        logitsFetched = false;
        truncatedSinceRun = false;
        fetchedBytes = 0;
    }

    /** The run finished; its last graph's result reads what it left. */
    void ran(TornadoExecutionResult last) {
        result = last;
    }

    /** The host cut a sequence back since the run: the caches still hold the positions it cut until the next run. */
    void truncated() {
        truncatedSinceRun = true;
    }

    int rows() {
        return rows;
    }

    long fetchedBytes() {
        return fetchedBytes;
    }

    /** logits[n, V] of the last chunk's rows (the array holds R rows), brought over on the first call after a run. */
    float[] logits() {
        if (result != null && !logitsFetched) {
            int count = rows * config.vocabSize();
            result.transferToHost(new DataRange(logitsDevice).withSize(count));
            MemorySegment.copy(logitsDevice.getSegment(), ValueLayout.JAVA_FLOAT, 0, logits, 0, count);
            fetchedBytes += (long) count * Float.BYTES;
            logitsFetched = true;
        }
        return logits;
    }

    int[] routed(int layer) {
        checkRouted(layer);
        return fetch(CausalLayout.flags(sequences, maxRows, config.nLayers(), context) + layer * maxRows, rows);
    }

    float[] routerLogits(int layer) {
        checkRouted(layer);
        float[] r = new float[rows];
        if (result != null) {
            long offset = (long) routedIndex.get(layer) * maxRows;
            result.transferToHost(new DataRange(routing).withOffset(offset).withSize(rows));
            MemorySegment.copy(routing.getSegment(), ValueLayout.JAVA_FLOAT, offset * Float.BYTES, r, 0, rows);
            fetchedBytes += (long) rows * Float.BYTES;
        }
        return r;
    }

    private void checkRouted(int layer) {
        if (!routedIndex.containsKey(layer)) {
            throw new ModException("layer " + layer + " is not routed");
        }
    }

    /** The counts start afresh from what the device holds now. */
    void resetCounts() {
        int[] counts = fetch(CausalLayout.counts(sequences, maxRows, config.nLayers(), context), 2 * config.nLayers());
        for (int i = 0; i < counts.length; i++) {
            countBase[i] = counts[i];
        }
    }

    /** Tokens routed into a layer (which 0) or routing decisions it made (which 1) since resetCounts(). */
    long count(int layer, int which) {
        if (!routedIndex.containsKey(layer)) {
            return 0;
        }
        int at = 2 * layer + which;
        return fetch(CausalLayout.counts(sequences, maxRows, config.nLayers(), context) + at, 1)[0] - countBase[at];
    }

    /** The positions layer's cache holds for sequence s, in the order they came. */
    int[] cachedPositions(int layer, int s) {
        return heldPositions(layer, s, fetch(CausalLayout.lengths(sequences, maxRows) + layer * sequences + s, 1)[0]);
    }

    // The first `length` positions the last run left in layer's cache of sequence s, less those a truncate() since cut off.
    private int[] heldPositions(int layer, int s, int length) {
        int[] held = fetch(CausalLayout.cached(sequences, maxRows, config.nLayers()) + (layer * sequences + s) * context, length);
        int kept = 0;
        while (kept < held.length && held[kept] < lengths.length(s)) {
            kept++;
        }
        return Arrays.copyOf(held, kept);
    }

    /** Bytes of keys and values the caches hold, all layers and sequences. */
    long cacheBytes() {
        int[] cached = fetch(CausalLayout.lengths(sequences, maxRows), config.nLayers() * sequences);
        long cachedRows = 0;
        for (int layer = 0; layer < config.nLayers(); layer++) {
            for (int s = 0; s < sequences; s++) {
                int length = cached[layer * sequences + s];
                cachedRows += truncatedSinceRun ? heldPositions(layer, s, length).length : length;
            }
        }
        return cachedRows * 2L * config.kvDim() * Float.BYTES;
    }

    // state[offset, offset + count) from the device as the last run left it (zeros before the first run).
    private int[] fetch(int offset, int count) {
        int[] out = new int[count];
        if (result != null && count > 0) {
            result.transferToHost(new DataRange(state).withOffset(offset).withSize(count));
            fetchedBytes += (long) count * Integer.BYTES;
            MemorySegment.copy(state.getSegment(), ValueLayout.JAVA_INT, (long) offset * Integer.BYTES, out, 0, count);
        }
        return out;
    }
}
