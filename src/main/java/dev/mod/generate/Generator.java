package dev.mod.generate;

import dev.mod.ModException;
import dev.mod.data.ByteTokenizer;
import dev.mod.model.DType;
import dev.mod.model.MemoryBudget;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.plan.CausalPass;
import dev.mod.plan.Logits;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Text generation: the prompts (byte tokens after BOS) go through one prefill chunk, then every unfinished
 * sequence takes one decode step per round, in a batch of static shape (buffers for all prompts, set up
 * once). A sequence ends at EOS or after maxTokens tokens. Each sequence draws from its own sampler seeded
 * from the seed and its index, so a prompt's text does not depend on the other prompts in the batch.
 */
public final class Generator {
    /** Decode steps of a warm-up between two prefills of a chunk of the prompt. */
    private static final int WARMUP_STEPS_PER_CHUNK = 32;
    /** Tokens of the prompt a warm-up prefills as one chunk, at most. */
    private static final int WARMUP_CHUNK = 64;

    /**
     * How to sample and how long; warmupSteps decode steps run first on a throwaway cache (the first prompt's tokens,
     * cycled), with a prefill of a chunk of the prompt before every 32 of them, so that the JIT has compiled the
     * prefill and decode paths before the prompt's first token is timed.
     */
    public record Settings(int maxTokens, double temperature, double topP, long seed, int warmupSteps) {
        public Settings {
            if (maxTokens < 1) {
                throw new ModException("--max-tokens must be at least 1, got " + maxTokens);
            }
            if (warmupSteps < 0) {
                throw new ModException("--warmup-steps must be at least 0, got " + warmupSteps);
            }
            Sampler.check(temperature, topP);
        }
    }

    /**
     * What a generation did. Times in ms (the warm-up's before the prompt, not part of the time to first token);
     * routed fractions per routed layer over the prompts (prefill) and over the decode steps; KV-cache bytes held
     * at the end (keys and values in kvType) against a dense model's for the same tokens.
     */
    public record Result(List<String> texts, List<int[]> tokens, double warmupMs, double timeToFirstTokenMs, double decodeMs,
                         int decodeTokens, Map<Integer, Double> prefillRouted, Map<Integer, Double> decodeRouted,
                         DType kvType, long kvBytes, long denseKvBytes, long contextTokens) {
        /** Tokens per second of the decode steps (after the first token). */
        public double decodeTokensPerSecond() {
            return decodeTokens == 0 ? Double.NaN : decodeTokens / (decodeMs / 1e3);
        }
    }

    private Generator() {
    }

    /** Checks prompts against the model before anything runs: none empty, each with its tokens fitting the context. */
    private static List<int[]> encode(Model model, List<String> prompts, int maxTokens) {
        ByteTokenizer.check(model);
        ModelConfig config = model.config();
        if (prompts.isEmpty()) {
            throw new ModException("no prompt given");
        }
        List<int[]> encoded = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            String name = prompts.size() == 1 ? "the prompt" : "prompt " + (i + 1);
            if (prompts.get(i).isEmpty()) {
                throw new ModException(name + " is empty");
            }
            int[] ids = ByteTokenizer.encodePrompt(prompts.get(i));
            if (ids.length > config.maxSeqLen()) {
                throw new ModException(name + " is " + ids.length + " tokens (BOS and bytes), longer than the model's max_seq_len "
                        + config.maxSeqLen());
            }
            if ((long) ids.length + maxTokens > config.maxSeqLen()) {
                throw new ModException(name + " (" + ids.length + " tokens) and --max-tokens " + maxTokens
                        + " need a context of " + ((long) ids.length + maxTokens) + ", above the model's max_seq_len " + config.maxSeqLen());
            }
            encoded.add(ids);
        }
        return encoded;
    }

    /**
     * Generates a completion for every prompt; stream (may be null) gets the first sequence's text piece by
     * piece as it is sampled.
     */
    public static Result generate(Model model, CausalPass.Opener opener, List<String> prompts, Settings settings,
                                  Consumer<String> stream) {
        List<int[]> encoded = encode(model, prompts, settings.maxTokens());
        int batch = encoded.size();
        MemoryBudget.check("--max-tokens " + settings.maxTokens() + " for " + batch + " prompts (the tokens kept for each)",
                (long) batch * settings.maxTokens() * Integer.BYTES);
        int promptRows = encoded.stream().mapToInt(p -> p.length).sum();
        int context = encoded.stream().mapToInt(p -> p.length).max().orElseThrow() + settings.maxTokens();
        double warmupMs = warmUp(opener, encoded.get(0), settings, model.config().maxSeqLen());
        try (CausalPass plan = opener.open(batch, Math.max(promptRows, batch), context)) {
            return generate(plan, encoded, settings, stream, warmupMs);
        }
    }

    // On a plan of its own: rounds of a prefill of the prompt's first tokens as one chunk, then decode steps of the
    // prompt's tokens cycled, each sampled by a sampler of its own (the draws are not used); steps decode steps in all.
    // Both paths run before the JIT compiles them: warmed on decode steps alone, the compiled code met the prompt's
    // prefill as a path it had never seen, was thrown away, and the first decode steps after it ran uncompiled again.
    // Returns the time it took in ms. Logits are not checked here: a model with non-finite logits is reported by the
    // generation itself, as without a warm-up.
    private static double warmUp(CausalPass.Opener opener, int[] prompt, Settings settings, int maxSeqLen) {
        int steps = settings.warmupSteps();
        if (steps == 0) {
            return 0;
        }
        long start = System.nanoTime();
        int chunk = Math.max(1, Math.min(Math.min(prompt.length, WARMUP_CHUNK), maxSeqLen / 2));
        int perChunk = Math.min(WARMUP_STEPS_PER_CHUNK, maxSeqLen - chunk);
        try (CausalPass plan = opener.open(1, chunk, chunk + perChunk)) {
            Sampler sampler = new Sampler(settings.temperature(), settings.topP(), settings.seed());
            int vocab = plan.config().vocabSize();
            int[] seq = new int[chunk];
            int[] tok = java.util.Arrays.copyOf(prompt, chunk);
            int[] one = new int[1];
            for (int done = 0; done < steps; ) {
                plan.truncate(0, 0);
                plan.run(seq, tok, chunk);
                for (int i = 0; i < perChunk && done < steps; i++, done++) {
                    one[0] = prompt[(chunk + i) % prompt.length];
                    plan.run(seq, one, 1);
                    sampler.sample(plan.logits(), 0, vocab);
                }
            }
        }
        return (System.nanoTime() - start) / 1e6;
    }

    private static Result generate(CausalPass plan, List<int[]> encoded, Settings settings, Consumer<String> stream,
                                   double warmupMs) {
        int batch = encoded.size();
        int promptRows = encoded.stream().mapToInt(p -> p.length).sum();
        int vocab = plan.config().vocabSize();

        Sampler[] samplers = new Sampler[batch];
        ByteTokenizer.Decoder[] decoders = new ByteTokenizer.Decoder[batch];
        StringBuilder[] texts = new StringBuilder[batch];
        int[][] generated = new int[batch][settings.maxTokens()];
        int[] counts = new int[batch];
        boolean[] done = new boolean[batch];
        for (int b = 0; b < batch; b++) {
            samplers[b] = new Sampler(settings.temperature(), settings.topP(), settings.seed() + 0x9E3779B97F4A7C15L * b);
            decoders[b] = new ByteTokenizer.Decoder();
            texts[b] = new StringBuilder();
        }

        long start = System.nanoTime();
        int[] seq = new int[Math.max(promptRows, batch)];
        int[] tok = new int[seq.length];
        int rows = 0;
        for (int b = 0; b < batch; b++) {
            for (int id : encoded.get(b)) {
                seq[rows] = b;
                tok[rows++] = id;
            }
        }
        plan.run(seq, tok, rows);
        int last = -1;
        for (int b = 0; b < batch; b++) {
            last += encoded.get(b).length;
            int sequence = b;
            Logits.requireFinite(plan.logits(), last, 1, vocab, row -> "the end of prompt " + (sequence + 1), "");
            accept(b, samplers[b].sample(plan.logits(), last * vocab, vocab), generated, counts, done, decoders, texts,
                    settings.maxTokens(), b == 0 ? stream : null);
        }
        long firstToken = System.nanoTime();
        Map<Integer, Double> prefillRouted = routedFractions(plan);
        plan.resetCounts();

        int decodeTokens = 0;
        while (true) {
            rows = 0;
            for (int b = 0; b < batch; b++) {
                if (!done[b]) {
                    seq[rows] = b;
                    tok[rows++] = generated[b][counts[b] - 1];
                }
            }
            if (rows == 0) {
                break;
            }
            plan.run(seq, tok, rows);
            Logits.requireFinite(plan.logits(), 0, rows, vocab, row -> "sequence " + (seq[row] + 1) + ", token " + (counts[seq[row]] + 1), "");
            for (int i = 0; i < rows; i++) {
                int b = seq[i];
                accept(b, samplers[b].sample(plan.logits(), i * vocab, vocab), generated, counts, done, decoders, texts,
                        settings.maxTokens(), b == 0 ? stream : null);
                decodeTokens++;
            }
        }
        long end = System.nanoTime();

        List<String> out = new ArrayList<>();
        List<int[]> ids = new ArrayList<>();
        long context = 0;
        for (int b = 0; b < batch; b++) {
            String tail = decoders[b].finish();
            texts[b].append(tail);
            if (b == 0 && stream != null && !tail.isEmpty()) {
                stream.accept(tail);
            }
            out.add(texts[b].toString());
            ids.add(java.util.Arrays.copyOf(generated[b], counts[b]));
            context += plan.length(b);
        }
        return new Result(out, ids, warmupMs, (firstToken - start) / 1e6, (end - firstToken) / 1e6, decodeTokens,
                prefillRouted, routedFractions(plan), plan.cacheType(), plan.cacheBytes(), plan.denseCacheBytes(context), context);
    }

    private static void accept(int b, int id, int[][] generated, int[] counts, boolean[] done,
                               ByteTokenizer.Decoder[] decoders, StringBuilder[] texts, int maxTokens, Consumer<String> stream) {
        generated[b][counts[b]++] = id;
        if (id == ByteTokenizer.EOS || counts[b] == maxTokens) {
            done[b] = true;
        }
        String piece = decoders[b].accept(id);
        texts[b].append(piece);
        if (stream != null && !piece.isEmpty()) {
            stream.accept(piece);
        }
    }

    private static Map<Integer, Double> routedFractions(CausalPass plan) {
        Map<Integer, Double> fractions = new LinkedHashMap<>();
        for (int layer : plan.routedLayers()) {
            fractions.put(layer, plan.routedFraction(layer));
        }
        return fractions;
    }
}
