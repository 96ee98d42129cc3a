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
    /** Decode steps of a warm-up round, after which every sequence is rolled back to its prompt. */
    private static final int WARMUP_STEPS_PER_ROUND = 32;
    /** Prefills of the prompt's first tokens (at most WARMUP_PREFILL_CHUNK) on a throwaway plan before the prompt's own. */
    private static final int WARMUP_PREFILLS = 6;
    private static final int WARMUP_PREFILL_CHUNK = 128;

    /**
     * How to sample and how long; warmupSteps decode steps run after the prompts' prefill and before the first token
     * is sampled, on the generation's own cache (rolled back to the prompts after every 32), so that the JIT has
     * compiled the decode path, at the generation's shapes and context, before the timed decode steps.
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
     * What a generation did. Times in ms: the time to first token is the prefill's and the warm-up's (each also
     * given alone);
     * routed fractions per routed layer over the prompts (prefill) and over the decode steps; KV-cache bytes held
     * at the end (keys and values in kvType) against a dense model's for the same tokens.
     */
    public record Result(List<String> texts, List<int[]> tokens, double prefillMs, double warmupMs, double timeToFirstTokenMs,
                         double decodeMs,
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
        double prefillWarmupMs = warmUpPrefill(opener, encoded.get(0), settings);
        try (CausalPass plan = opener.open(batch, Math.max(promptRows, batch), context)) {
            return generate(plan, encoded, settings, stream, prefillWarmupMs);
        }
    }

    // Prefills of the first prompt's first tokens on a throwaway plan, so that the prompt's own prefill runs compiled
    // (run cold, a thousand tokens took 2.5-3 s to prefill, against 0.3-0.7 s after this). Returns its time in ms.
    private static double warmUpPrefill(CausalPass.Opener opener, int[] prompt, Settings settings) {
        if (settings.warmupSteps() == 0) {
            return 0;
        }
        long start = System.nanoTime();
        int chunk = Math.min(prompt.length, WARMUP_PREFILL_CHUNK);
        try (CausalPass plan = opener.open(1, chunk, chunk)) {
            for (int round = 0; round < WARMUP_PREFILLS; round++) {
                plan.truncate(0, 0);
                plan.run(new int[chunk], java.util.Arrays.copyOf(prompt, chunk), chunk);
            }
        }
        return (System.nanoTime() - start) / 1e6;
    }

    // Decode steps on the generation's own plan, right after its prefill: every sequence takes rounds of steps (its
    // prompt's tokens cycled, each sampled by a sampler of its own; the draws are not used) and is rolled back to its
    // prompt after each round. These are the shapes (batch, rows) and the contexts the generation decodes at. Warmed
    // before the prompt on a short context of its own, the compiled code met the generation's longer loops (attention
    // over a cache of a thousand tokens) as paths it had never seen: it was thrown away (uncommon traps) and the first
    // tokens ran uncompiled again, at half the speed for BF16 caches. Returns the time it took in ms.
    private static double warmUp(CausalPass plan, List<int[]> encoded, Settings settings) {
        int steps = settings.warmupSteps();
        if (steps == 0) {
            return 0;
        }
        long start = System.nanoTime();
        int batch = encoded.size();
        int perRound = Math.min(WARMUP_STEPS_PER_ROUND, settings.maxTokens());
        int vocab = plan.config().vocabSize();
        Sampler sampler = new Sampler(settings.temperature(), settings.topP(), settings.seed());
        int[] seq = new int[batch];
        int[] tok = new int[batch];
        for (int b = 0; b < batch; b++) {
            seq[b] = b;
        }
        for (int done = 0; done < steps; ) {
            for (int i = 0; i < perRound && done < steps; i++, done++) {
                for (int b = 0; b < batch; b++) {
                    tok[b] = encoded.get(b)[i % encoded.get(b).length];
                }
                plan.run(seq, tok, batch);
                sampler.sample(plan.logits(), 0, vocab);
            }
            for (int b = 0; b < batch; b++) {
                plan.truncate(b, encoded.get(b).length);
            }
        }
        return (System.nanoTime() - start) / 1e6;
    }

    private static Result generate(CausalPass plan, List<int[]> encoded, Settings settings, Consumer<String> stream,
                                   double prefillWarmupMs) {
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
        // the logits at each prompt's end, kept while the warm-up's steps overwrite the plan's
        float[] promptEnds = new float[batch * vocab];
        int last = -1;
        for (int b = 0; b < batch; b++) {
            last += encoded.get(b).length;
            int sequence = b;
            Logits.requireFinite(plan.logits(), last, 1, vocab, row -> "the end of prompt " + (sequence + 1), "");
            System.arraycopy(plan.logits(), last * vocab, promptEnds, b * vocab, vocab);
        }
        long prefilled = System.nanoTime();
        Map<Integer, Double> prefillRouted = routedFractions(plan);
        double warmupMs = prefillWarmupMs + warmUp(plan, encoded, settings);
        plan.resetCounts();
        for (int b = 0; b < batch; b++) {
            accept(b, samplers[b].sample(promptEnds, b * vocab, vocab), generated, counts, done, decoders, texts,
                    settings.maxTokens(), b == 0 ? stream : null);
        }
        long firstToken = System.nanoTime();

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
        return new Result(out, ids, (prefilled - start) / 1e6, warmupMs, (firstToken - start) / 1e6 + prefillWarmupMs,
                (end - firstToken) / 1e6, decodeTokens,
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
