package dev.mod.tornado;

/**
 * Where things are in the causal plan's state, one int buffer on the device that every graph passes on and that
 * outlives runs: the chunk being run (rows, each sequence's length before it, and per row the token, sequence and
 * position), then per layer what its KV caches hold (each sequence's length, then the positions of its rows),
 * per layer the last chunk's routing decisions, and per layer the routed tokens and decisions counted so far.
 * S sequences, R rows per chunk at most, L layers, C rows of cache per sequence (the context).
 * Kernels call these methods too (TornadoVM inlines them).
 */
final class CausalLayout {
    private CausalLayout() {
    }

    /** [1] rows of the chunk. */
    static final int ROWS = 0;
    /** [S] tokens each sequence held before the chunk: what its caches keep. */
    static final int KEEP = 1;

    /** [R] token ids. */
    static int tokens(int s) {
        return 1 + s;
    }

    /** [R] sequence of each row. */
    static int sequences(int s, int r) {
        return 1 + s + r;
    }

    /** [R] position of each row in its sequence. */
    static int positions(int s, int r) {
        return 1 + s + 2 * r;
    }

    /** [L, S] rows in each layer's cache of each sequence. */
    static int lengths(int s, int r) {
        return 1 + s + 3 * r;
    }

    /** [L, S, C] the position of each cached row. */
    static int cached(int s, int r, int l) {
        return lengths(s, r) + l * s;
    }

    /** [L, R] 1 where the layer processed the chunk's row (routed layers). */
    static int flags(int s, int r, int l, int c) {
        return cached(s, r, l) + l * s * c;
    }

    /** [L, 2] tokens routed and decisions made (routed layers), counted since the plan was built. */
    static int counts(int s, int r, int l, int c) {
        return flags(s, r, l, c) + l * r;
    }

    static long size(int s, int r, int l, int c) {
        return (long) counts(s, r, l, c) + 2L * l;
    }
}
