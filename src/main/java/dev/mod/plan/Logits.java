package dev.mod.plan;

import dev.mod.ModException;

import java.util.function.IntFunction;

/** Checks on a pass's logits before anything uses them. */
public final class Logits {
    private Logits() {
    }

    /**
     * A one-line error when a row of logits[rows, V] (from row `from`) holds a NaN or an infinity, naming the first
     * such row as `where.apply(row)` ("sequence 0, position 3") and ending with `remedy` when there is one: a weight or an
     * activation that overflowed would otherwise be written or sampled from silently.
     */
    public static void requireFinite(float[] logits, int from, int rows, int vocab, IntFunction<String> where, String remedy) {
        for (int r = from; r < from + rows; r++) {
            for (int v = 0; v < vocab; v++) {
                if (!Float.isFinite(logits[r * vocab + v])) {
                    throw new ModException("the logits at " + where.apply(r) + " are not finite (" + logits[r * vocab + v]
                            + " for token " + v + "): a weight or an activation overflowed" + (remedy.isEmpty() ? "" : "; " + remedy));
                }
            }
        }
    }
}
