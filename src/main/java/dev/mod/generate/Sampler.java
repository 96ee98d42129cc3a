package dev.mod.generate;

import dev.mod.ModException;

import java.util.SplittableRandom;

/**
 * Picks the next token from a row of logits: the most likely one at temperature 0, else a draw from
 * softmax(logits / temperature) cut to the smallest set of most likely tokens whose probability reaches
 * top-p (nucleus sampling; ties ranked by lower id). Seeded, so the same logits and seed give the same draws.
 */
public final class Sampler {
    private final double temperature;
    private final double topP;
    private final SplittableRandom random;
    private double[] probs = new double[0];
    private int[] order = new int[0];
    private int[] merged = new int[0];

    public Sampler(double temperature, double topP, long seed) {
        check(temperature, topP);
        this.temperature = temperature;
        this.topP = topP;
        this.random = new SplittableRandom(seed);
    }

    /** Refuses a temperature below 0 (or not a number) and a top-p outside (0, 1]. */
    public static void check(double temperature, double topP) {
        if (!(temperature >= 0) || !Double.isFinite(temperature)) {
            throw new ModException("--temperature must be a number >= 0, got " + temperature);
        }
        if (!(topP > 0 && topP <= 1)) {
            throw new ModException("--top-p must be in (0, 1], got " + topP);
        }
    }

    // the next token from logits[off, off + vocab)
    public int sample(float[] logits, int off, int vocab) {
        if (temperature == 0) {
            int best = 0;
            for (int i = 1; i < vocab; i++) {
                if (logits[off + i] > logits[off + best]) {
                    best = i;
                }
            }
            return best;
        }
        if (probs.length != vocab) {
            probs = new double[vocab];
            order = new int[vocab];
            merged = new int[vocab];
        }
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < vocab; i++) {
            max = Math.max(max, logits[off + i]);
        }
        double total = 0;
        for (int i = 0; i < vocab; i++) {
            probs[i] = Math.exp((logits[off + i] - max) / temperature);
            total += probs[i];
            order[i] = i;
        }
        sortByProbability(vocab);
        int kept = 0;
        double mass = 0;
        while (kept < vocab && (kept == 0 || mass < topP * total)) {
            mass += probs[order[kept++]];
        }
        double u = random.nextDouble() * mass;
        for (int i = 0; i < kept; i++) {
            u -= probs[order[i]];
            if (u < 0) {
                return order[i];
            }
        }
        return order[kept - 1];
    }

    /**
     * order[0, n), ids in ascending order, sorted by probability, most likely first; stable, so tied ids stay in
     * ascending order. A merge sort on ints: a sort of boxed ids through a comparator took about a millisecond a
     * token until the JIT had compiled it, which the first tokens of a generation paid (README, "Generation").
     */
    private void sortByProbability(int n) {
        int[] from = order;
        int[] to = merged;
        for (int width = 1; width < n; width *= 2) {
            for (int lo = 0; lo < n; lo += 2 * width) {
                int mid = Math.min(lo + width, n);
                int hi = Math.min(lo + 2 * width, n);
                int i = lo;
                int j = mid;
                int k = lo;
                while (i < mid && j < hi) {
                    to[k++] = probs[from[j]] > probs[from[i]] ? from[j++] : from[i++];
                }
                while (i < mid) {
                    to[k++] = from[i++];
                }
                while (j < hi) {
                    to[k++] = from[j++];
                }
            }
            int[] swap = from;
            from = to;
            to = swap;
        }
        if (from != order) {
            System.arraycopy(from, 0, order, 0, n);
        }
    }
}
