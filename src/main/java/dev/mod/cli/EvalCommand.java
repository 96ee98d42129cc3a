package dev.mod.cli;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mod.ModException;
import dev.mod.backend.Backend;
import dev.mod.data.ByteTokenizer;
import dev.mod.data.JdkSourceText;
import dev.mod.data.TextData;
import dev.mod.io.ModelFile;
import dev.mod.model.DType;
import dev.mod.model.Model;
import dev.mod.plan.CausalPass;
import dev.mod.plan.ForwardPass;
import dev.mod.plan.Logits;
import dev.mod.plan.RoutingRule;
import me.tongfei.progressbar.ProgressBar;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "eval", mixinStandardHelpOptions = true,
        description = {"Held-out loss of a model on a text: nats and bits per byte, perplexity, and the fraction of tokens "
                + "each routed layer processed, under top-k routing or a causal rule.",
                "The text is cut as training cuts it: windows of T bytes, each byte predicting the next; by default only "
                        + "its held-out tenth, which `mod train --data` with the same text and --max-data-bytes never trains on."})
final class EvalCommand implements Callable<Integer> {
    @Mixin
    ModelFileOption model;

    @Option(names = "--text", required = true, paramLabel = "FILE|FOLDER|" + JdkSourceText.NAME + "|" + JdkSourceText.FILES_NAME
            + "|u16:FILE|u32:FILE",
            description = "The text: a file, a folder (its files in name order), " + JdkSourceText.NAME + " for the JDK's Java sources, "
                    + JdkSourceText.FILES_NAME + " for them with a tenth held out in whole files, "
                    + "or token ids another tokenizer made (u16:FILE, u32:FILE, as mod train --data takes them).")
    String text;

    @Option(names = "--part", defaultValue = "held-out", paramLabel = "held-out|all",
            description = "held-out: the text's last tenth, as training holds it out; all: the whole text (default: ${DEFAULT-VALUE}).")
    String part;

    @Option(names = "--max-data-bytes", defaultValue = "8000000",
            description = "Read at most this much of the text, as `mod train` does (default: ${DEFAULT-VALUE}).")
    int maxDataBytes;

    @Option(names = "--seq", paramLabel = "T", description = "Bytes per window (default: the model's max_seq_len).")
    Integer seqLen;

    @Option(names = "--batch", defaultValue = "8", paramLabel = "B", description = "Windows per forward pass (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--max-windows", paramLabel = "N", description = "Score at most the first N windows of the part (default: all).")
    Integer maxWindows;

    @Option(names = "--json", description = "One JSON object on standard output instead of the table.")
    boolean json;

    @Mixin
    RoutingOptions routing;

    @Mixin
    BackendOption backend;

    @Mixin
    ProgressOption progress;

    @Override
    public Integer call() {
        boolean heldOut = switch (part) {
            case "held-out" -> true;
            case "all" -> false;
            default -> throw new ModException("--part must be held-out or all, got \"" + part + "\"");
        };
        if (batch < 1) {
            throw new ModException("--batch must be at least 1, got " + batch);
        }
        if (maxWindows != null && maxWindows < 1) {
            throw new ModException("--max-windows must be at least 1, got " + maxWindows);
        }
        try (Model m = ModelFile.load(model.path); Backend runtime = backend.start()) {
            int t = seqLen == null ? m.config().maxSeqLen() : seqLen;
            if (t < 1 || t > m.config().maxSeqLen()) {
                throw new ModException("--seq must be in [1, " + m.config().maxSeqLen() + "] (the model's max_seq_len), got " + t);
            }
            RoutingRule rule = routing.rule(m, RoutingRule.TOP_K);
            if (!rule.causal() && !(rule instanceof RoutingRule.TopK)) {
                throw new ModException("routing: rule \"" + rule.name() + "\" is a training control; eval takes topk or a causal rule");
            }
            TextData data = TextData.open(text, t, maxDataBytes);
            if (data.bytes()) {
                ByteTokenizer.check(m);
            } else {
                data.checkVocabulary(m.config().vocabSize());
            }
            int windows = maxWindows == null ? data.windows(heldOut) : Math.min(maxWindows, data.windows(heldOut));
            long start = System.nanoTime();
            Score score = new Score(m.config().routedLayers());
            try (ProgressBar bar = progress.bar("eval", windows); Passes passes = new Passes(m, runtime, rule)) {
                for (int first = 0; first < windows; first += batch) {
                    int rows = Math.min(batch, windows - first);
                    int[][] input = new int[rows][t];
                    int[][] target = new int[rows][t];
                    for (int r = 0; r < rows; r++) {
                        data.window(heldOut, first + r, input[r], target[r]);
                    }
                    passes.score(input, target, score);
                    bar.stepTo(first + rows);
                    bar.setExtraMessage(String.format(Locale.ROOT, "%.4f nats per byte", score.nats / score.tokens));
                }
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            ObjectNode result = result(m, data, heldOut, windows, t, rule, score, seconds, runtime.name());
            if (json) {
                System.out.println(result.toPrettyString());
            } else {
                print(result);
            }
        }
        return 0;
    }

    /** Sums over the scored tokens: their cross-entropy in nats, and per routed layer the tokens it processed. */
    private static final class Score {
        final List<Integer> layers;
        final long[] routed;
        double nats;
        long tokens;
        long decisions;

        Score(List<Integer> layers) {
            this.layers = layers;
            this.routed = new long[layers.size()];
        }

        // logits[rows * t, V] against target[rows][t]: -log softmax(logits)[target], summed in double
        void add(float[] logits, int[][] target, int vocab) {
            int t = target[0].length;
            for (int r = 0; r < target.length; r++) {
                for (int i = 0; i < t; i++) {
                    int row = r * t + i;
                    double max = Double.NEGATIVE_INFINITY;
                    for (int v = 0; v < vocab; v++) {
                        max = Math.max(max, logits[row * vocab + v]);
                    }
                    double sum = 0;
                    for (int v = 0; v < vocab; v++) {
                        sum += Math.exp(logits[row * vocab + v] - max);
                    }
                    nats += max + Math.log(sum) - logits[row * vocab + target[r][i]];
                }
            }
            tokens += (long) target.length * t;
        }
    }

    /**
     * The forward passes of the evaluation: one for full batches, another for the last, shorter one (a pass has a
     * static batch). A causal pass is reset before each batch, so that every window starts from an empty cache.
     */
    private static final class Passes implements AutoCloseable {
        private final Model model;
        private final Backend runtime;
        private final RoutingRule rule;
        private ForwardPass topK;
        private CausalPass causal;
        private int rows;

        Passes(Model model, Backend runtime, RoutingRule rule) {
            this.model = model;
            this.runtime = runtime;
            this.rule = rule;
        }

        void score(int[][] input, int[][] target, Score score) {
            int n = input.length;
            int t = input[0].length;
            int vocab = model.config().vocabSize();
            if (n != rows) {
                close();
                rows = n;
            }
            float[] logits;
            if (rule.causal()) {
                if (causal == null) {
                    causal = runtime.openCausal(model, rule, n, n * t, t, null, DType.F32);
                }
                causal.reset();
                causal.runSequences(input);
                logits = causal.logits();
                for (int j = 0; j < score.layers.size(); j++) {
                    score.routed[j] += causal.routedTokens(score.layers.get(j));
                }
            } else {
                if (topK == null) {
                    topK = runtime.open(model, n, t);
                    topK.keepRoutingOutputs(false);
                }
                topK.run(input);
                logits = topK.logits();
                for (int j = 0; j < score.layers.size(); j++) {
                    score.routed[j] += (long) n * topK.capacity();
                }
            }
            Logits.requireFinite(logits, 0, n * t, vocab, row -> "window position " + row % t, "the model's weights are not usable");
            score.add(logits, target, vocab);
            score.decisions += (long) n * t;
        }

        @Override
        public void close() {
            if (topK != null) {
                topK.close();
                topK = null;
            }
            if (causal != null) {
                causal.close();
                causal = null;
            }
        }
    }

    private ObjectNode result(Model m, TextData data, boolean heldOut, int windows, int t, RoutingRule rule, Score score,
                              double seconds, String backendName) {
        ObjectNode r = JsonNodeFactory.instance.objectNode();
        r.put("model", model.path.toString());
        r.put("text", data.describe());
        r.put("part", heldOut ? "held-out" : "all");
        r.put("seq_len", t);
        r.put("windows", windows);
        r.put("scored_bytes", score.tokens);
        r.put("unscored_bytes", maxWindows == null ? data.unscoredBytes(heldOut) : 0);
        r.put("routing", rule.name());
        double nats = score.nats / score.tokens;
        r.put("loss_nats_per_byte", nats);
        r.put("bits_per_byte", nats / Math.log(2));
        r.put("perplexity", Math.exp(nats));
        ObjectNode routed = r.putObject("routed_fraction");
        for (int j = 0; j < score.layers.size(); j++) {
            routed.put(Integer.toString(score.layers.get(j)), (double) score.routed[j] / score.decisions);
        }
        r.put("capacity", m.config().routedLayers().isEmpty() ? 1.0 : m.config().capacity());
        r.put("backend", backendName);
        r.put("seconds", seconds);
        return r;
    }

    private static void print(ObjectNode r) {
        System.out.printf(Locale.ROOT, "model       %s%n", r.get("model").asText());
        System.out.printf(Locale.ROOT, "text        %s; scored: %s part, %,d windows of T = %d (%,d bytes%s)%n", r.get("text").asText(),
                r.get("part").asText(), r.get("windows").asInt(), r.get("seq_len").asInt(), r.get("scored_bytes").asLong(),
                r.get("unscored_bytes").asLong() == 0 ? "" : String.format(Locale.ROOT, "; its last %,d bytes, shorter than a window, not scored",
                        r.get("unscored_bytes").asLong()));
        System.out.printf(Locale.ROOT, "routing     %s on %s, %.1f s%n", r.get("routing").asText(), r.get("backend").asText(),
                r.get("seconds").asDouble());
        System.out.printf(Locale.ROOT, "loss        %.4f nats per byte, %.4f bits per byte, perplexity %.3f%n",
                r.get("loss_nats_per_byte").asDouble(), r.get("bits_per_byte").asDouble(), r.get("perplexity").asDouble());
        StringBuilder routed = new StringBuilder();
        r.get("routed_fraction").properties().forEach(e -> routed.append(String.format(Locale.ROOT, "  %s: %.4f", e.getKey(),
                e.getValue().asDouble())));
        System.out.printf(Locale.ROOT, "routed      fraction of tokens each routed layer processed (capacity %s):%s%n",
                r.get("capacity").asText(), routed.length() == 0 ? " none (no routed layers)" : routed);
    }
}
