package dev.mod.plan;

import dev.mod.ModException;
import dev.mod.model.ModelConfig;

/**
 * The tokens each of a causal pass's S sequences holds, and the check of a chunk before it runs: 1 to maxRows rows,
 * sequences in [0, S), ids in the vocabulary, each sequence's rows adjacent, and no sequence past the context
 * (the rows its caches have room for). Each backend's causal pass keeps one.
 */
public final class SequenceLengths {
    private final int maxRows;
    private final int context;
    private final int vocabSize;
    private final String contextName;
    private final int[] seen;     // [S] tokens each sequence has taken in
    private final int[] runMark;  // [S] last chunk each sequence appeared in (adjacency check)
    private final int[] pending;  // [S] rows of each sequence in the chunk being checked
    private int chunks;

    /** For a model of this config: S sequences, chunks of at most maxRows rows, a context of 1 to max_seq_len tokens. */
    public SequenceLengths(ModelConfig config, int sequences, int maxRows, int context) {
        if (context < 1 || context > config.maxSeqLen()) {
            throw new ModException("a context of " + context + " tokens is outside 1 to the model's max_seq_len " + config.maxSeqLen());
        }
        if (sequences < 1) {
            throw new ModException("generation needs at least one sequence");
        }
        if (maxRows < 1) {
            throw new ModException("a chunk must hold at least one token");
        }
        this.maxRows = maxRows;
        this.context = context;
        this.vocabSize = config.vocabSize();
        this.contextName = context == config.maxSeqLen() ? "the model's max_seq_len" : "this plan's context of";
        this.seen = new int[sequences];
        this.runMark = new int[sequences];
        this.pending = new int[sequences];
    }

    /** Checks a chunk (nothing changes when it is refused), then gives each row its position: pos[i] = tokens its sequence held before. */
    public void take(int[] seq, int[] tok, int n, int[] pos) {
        if (n < 1 || n > maxRows) {
            throw new ModException("a chunk must hold 1 to " + maxRows + " tokens, got " + n);
        }
        int mark = chunks + 1;
        for (int i = 0; i < n; i++) {
            int s = seq[i];
            if (s < 0 || s >= seen.length) {
                throw new ModException("sequence " + s + " is outside [0, " + seen.length + ")");
            }
            if (tok[i] < 0 || tok[i] >= vocabSize) {
                throw new ModException("token id " + tok[i] + " is outside the vocabulary [0, " + vocabSize + ")");
            }
            if (i > 0 && seq[i - 1] != s && runMark[s] == mark) {
                throw new ModException("rows of sequence " + s + " are not adjacent in the chunk");
            }
            runMark[s] = mark;
            pending[s] = 0;
        }
        for (int i = 0; i < n; i++) {
            int s = seq[i];
            if (seen[s] + ++pending[s] > context) {
                throw new ModException("sequence " + s + " would hold more than " + contextName + " " + context + " tokens");
            }
        }
        chunks++;
        for (int i = 0; i < n; i++) {
            pos[i] = seen[seq[i]]++;
        }
    }

    /** Rolls sequence s back to its first `length` tokens. */
    public void truncate(int s, int length) {
        if (length < 0 || length > seen[s]) {
            throw new ModException("sequence " + s + " holds " + seen[s] + " tokens, cannot roll back to " + length);
        }
        seen[s] = length;
    }

    public int length(int s) {
        return seen[s];
    }

    public int sequences() {
        return seen.length;
    }

    public int context() {
        return context;
    }
}
