package dev.mod.plan;

import dev.mod.model.DType;
import dev.mod.model.ModelConfig;

import java.util.List;

/**
 * Generation's forward pass, whatever runs it: the stage-by-stage {@link CausalPlan} on a backend's kernels, or a
 * backend's own compiled form (the TornadoVM task graphs). Up to S sequences, each with its own KV cache, take new
 * tokens in chunks (a prompt at prefill, a token per sequence at a decode step); routed layers decide per token with
 * a causal rule. Outputs are the pass's own buffers, overwritten by the next chunk.
 */
public interface CausalPass extends AutoCloseable {
    /** Opens a causal pass for S sequences, chunks of at most maxRows rows and `context` tokens per sequence. */
    @FunctionalInterface
    interface Opener {
        CausalPass open(int sequences, int maxRows, int context);
    }

    /**
     * Runs a chunk: row i is token tok[i] of sequence seq[i], appended after what that sequence holds. Rows of one
     * sequence must be adjacent. Logits of the chunk's rows are in logits() after.
     */
    void run(int[] seq, int[] tok, int n);

    /** Prefill: the tokens of one sequence, appended to what it holds. Logits [n, V] after. */
    default void prefill(int s, int[] prompt) {
        int[] seq = new int[prompt.length];
        java.util.Arrays.fill(seq, s);
        run(seq, prompt, prompt.length);
    }

    /** Sequences of equal length, each appended to what sequence r holds, in one chunk: tokens[r] goes to sequence r. */
    default void runSequences(int[][] tokens) {
        int t = tokens[0].length;
        int[] seq = new int[tokens.length * t];
        int[] tok = new int[tokens.length * t];
        for (int r = 0; r < tokens.length; r++) {
            for (int i = 0; i < t; i++) {
                seq[r * t + i] = r;
                tok[r * t + i] = tokens[r][i];
            }
        }
        run(seq, tok, tokens.length * t);
    }

    /** Rolls sequence s back to its first `length` tokens (a later chunk continues from there). */
    void truncate(int s, int length);

    /** Forgets every sequence's tokens and the routing counts. */
    default void reset() {
        for (int s = 0; s < sequences(); s++) {
            truncate(s, 0);
        }
        resetCounts();
    }

    /** Starts the routing counts (routedFraction, routedTokens, decisions) afresh. */
    void resetCounts();

    /** Sequences the pass holds. */
    int sequences();

    /** Tokens sequence s holds. */
    int length(int s);

    /** logits[n, V] of the last chunk's rows. */
    float[] logits();

    /** Rows of the last chunk. */
    int rows();

    /** routed[n]: 1 where routed layer `layer` processed the last chunk's row, else 0. */
    int[] routed(int layer);

    /** r[n]: router logits of routed layer `layer` for the last chunk's rows. */
    float[] routerLogits(int layer);

    /** Tokens layer processed since the last resetCounts. */
    long routedTokens(int layer);

    /** Routing decisions layer made since the last resetCounts (0 for a dense layer). */
    long decisions(int layer);

    /** Fraction of the tokens layer processed since the last resetCounts (1 for a dense layer). */
    default double routedFraction(int layer) {
        if (!config().isRouted(layer)) {
            return 1;
        }
        return decisions(layer) == 0 ? Double.NaN : (double) routedTokens(layer) / decisions(layer);
    }

    /** Bytes of keys and values the caches hold (in cacheType()), all layers and sequences. */
    long cacheBytes();

    /** The type the KV cache keeps keys and values in: F32, or BF16 (see KvCache). */
    default DType cacheType() {
        return DType.F32;
    }

    /** What a dense model of this config (every layer keeps every token) holds for the given tokens, in cacheType(). */
    default long denseCacheBytes(long tokens) {
        return tokens * config().nLayers() * 2L * config().kvDim() * cacheType().bytes();
    }

    ModelConfig config();

    default List<Integer> routedLayers() {
        return config().routedLayers();
    }

    /** The backend's name, as --backend takes it. */
    String backend();

    /** Releases what the pass holds on a device; host-side passes hold nothing. */
    @Override
    default void close() {
    }
}
