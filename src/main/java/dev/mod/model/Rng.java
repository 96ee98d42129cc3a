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
        long z = (state += 0x9E3779B97F4A7C15L);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** Uniform in [0, bound). */
    public int nextInt(int bound) {
        return (int) Math.floorMod(nextLong(), (long) bound);
    }
}
