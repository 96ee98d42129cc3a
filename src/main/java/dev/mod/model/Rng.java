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
        return uniformBits(draw, layer, i) / (float) (1 << 24);
    }

    // the 24 bits of uniform(draw, layer, i)
    private static int uniformBits(long draw, int layer, int i) {
        return (int) (mix(draw * GOLDEN + layer + (i + 1) * GOLDEN) >>> 40);
    }

    /** Uniform numbers a Gaussian sample sums (see gaussian). */
    public static final int GAUSSIAN_TERMS = 12;

    /**
     * The i-th standard normal sample of a layer's draw: the sum of uniform numbers 12i .. 12i + 11 of its stream, less 6
     * (Irwin-Hall: mean 0, variance 1, within 6 of 0, its CDF within 0.0024 of a normal's). Summed as 24-bit
     * integers and converted once, so that a device that adds integers computes the same float bit for bit, where a
     * Box-Muller sample would depend on its log and cos.
     */
    public static float gaussian(long draw, int layer, int i) {
        int sum = 0;
        for (int m = 0; m < GAUSSIAN_TERMS; m++) {
            sum += uniformBits(draw, layer, GAUSSIAN_TERMS * i + m);
        }
        return (sum - GAUSSIAN_TERMS / 2 * (1 << 24)) / (float) (1 << 24);
    }

    /** Uniform in [0, bound). */
    public int nextInt(int bound) {
        return (int) Math.floorMod(nextLong(), (long) bound);
    }
}
