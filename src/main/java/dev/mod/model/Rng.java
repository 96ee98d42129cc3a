package dev.mod.model;

/**
 * SplitMix64: a small random generator whose whole state is one long, so a training checkpoint can store
 * it and a resumed run draws the same numbers as one that never stopped.
 */
public final class Rng {
    private long state;

    public Rng(long state) {
        this.state = state;
    }

    public long state() {
        return state;
    }

    public long nextLong() {
        return mix(state += GOLDEN);
    }

    private static final long GOLDEN = 0x9E3779B97F4A7C15L;

    // SplitMix64's output function of a state
    public static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /**
     * The i-th uniform number in [0, 1) (24 bits) of a layer's draw: the i-th output of the stream seeded with
     * draw * golden + layer, computed without running the stream (so a device's work-items can each compute theirs).
     */
    public static float uniform(long draw, int layer, int i) {
        return (mix(draw * GOLDEN + layer + (i + 1) * GOLDEN) >>> 40) / (float) (1 << 24);
    }

    /** Uniform in [0, bound). */
    public int nextInt(int bound) {
        return (int) Math.floorMod(nextLong(), (long) bound);
    }
}
