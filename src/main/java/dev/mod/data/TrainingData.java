package dev.mod.data;

import dev.mod.model.Rng;

/**
 * Where training batches come from: sequences of T + 1 byte tokens, the first T the input and the last T
 * the targets (the next token). Training batches are drawn with the run's generator; the held-out batches
 * are fixed by the data alone, so every evaluation of a run, and of runs on the same data, sees the same text.
 */
public interface TrainingData {
    /** A one-line description for logs and results. */
    String describe();

    // input[B, T], target[B, T]: B windows drawn from the training split
    void batch(Rng rng, int[][] input, int[][] target);

    // input[B, T], target[B, T]: held-out batch number i (the same every time)
    void heldOut(int i, int[][] input, int[][] target);

    /**
     * For tasks with a known answer, where only some tokens matter: important[b][t] is true at the positions
     * of held-out batch i whose tokens carry the answer; null for plain text.
     */
    default boolean[][] important(int i, int batch, int seqLen) {
        return null;
    }

    /** For tasks with a known answer: answer[t] is true where target t is part of the answer; null for plain text. */
    default boolean[] answers() {
        return null;
    }
}
