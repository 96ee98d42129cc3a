package dev.mod.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mod.ModException;
import dev.mod.backend.Backend;
import dev.mod.data.ByteTokenizer;
import dev.mod.data.JdkSourceText;
import dev.mod.data.TextData;
import dev.mod.io.AtomicFiles;
import dev.mod.io.ModelFile;
import dev.mod.model.DType;
import dev.mod.model.Model;
import dev.mod.plan.CausalPass;
import dev.mod.plan.ForwardPass;
import dev.mod.plan.Logits;
import dev.mod.plan.RoutingRule;
import dev.mod.plot.Charts;
import me.tongfei.progressbar.ProgressBar;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
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

    @Option(names = "--routing-analysis", paramLabel = "DIR",
            description = "Also write routing_entropy.json and routing_entropy.png into DIR: the scored tokens grouped by how "
                    + "many routed blocks processed them, with the mean entropy of their next-byte predictions and their mean "
                    + "loss (the paper's question: are the tokens routed through more blocks those of higher-entropy predictions?).")
    Path analysisDir;

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
            if (analysisDir != null && m.config().routedLayers().isEmpty()) {
                throw new ModException("--routing-analysis needs routed layers; this model has none");
            }
            long start = System.nanoTime();
            Score score = new Score(m.config().routedLayers(), analysisDir != null);
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
            if (analysisDir != null) {
                result.set("routing_analysis", writeAnalysis(score, result));
            }
            if (json) {
                System.out.println(result.toPrettyString());
            } else {
                print(result);
            }
        }
        return 0;
    }

    /**
     * Sums over the scored tokens: their cross-entropy in nats, and per routed layer the tokens it processed; with the
     * routing analysis, per number of routed blocks that processed a token (0 .. R): tokens, summed prediction entropy
     * and loss, and the sums a correlation of blocks and entropy needs.
     */
    private static final class Score {
        final List<Integer> layers;
        final long[] routed;
        double nats;
        long tokens;
        long decisions;
        final long[] byBlocks;
        final double[] entropyByBlocks;
        final double[] lossByBlocks;
        double sumBlocksEntropy;
        double sumEntropy;
        double sumEntropySquared;

        Score(List<Integer> layers, boolean analysis) {
            this.layers = layers;
            this.routed = new long[layers.size()];
            int groups = analysis ? layers.size() + 1 : 0;
            byBlocks = new long[groups];
            entropyByBlocks = new double[groups];
            lossByBlocks = new double[groups];
        }

        // logits[rows * t, V] against target[rows][t]: -log softmax(logits)[target], summed in double; blocks[rows * t]: the
        // routed blocks that processed each token (null without the analysis)
        void add(float[] logits, int[][] target, int vocab, int[] blocks) {
            int t = target[0].length;
            for (int r = 0; r < target.length; r++) {
                for (int i = 0; i < t; i++) {
                    int row = r * t + i;
                    double max = Double.NEGATIVE_INFINITY;
                    for (int v = 0; v < vocab; v++) {
                        max = Math.max(max, logits[row * vocab + v]);
                    }
                    double sum = 0;
                    double weighted = 0;
                    for (int v = 0; v < vocab; v++) {
                        double e = Math.exp(logits[row * vocab + v] - max);
                        sum += e;
                        weighted += e * (logits[row * vocab + v] - max);
                    }
                    double loss = max + Math.log(sum) - logits[row * vocab + target[r][i]];
                    nats += loss;
                    if (blocks != null) {
                        // H = log sum e^(x - max) - E_p[x - max]
                        double entropy = Math.log(sum) - weighted / sum;
                        int b = blocks[row];
                        byBlocks[b]++;
                        entropyByBlocks[b] += entropy;
                        lossByBlocks[b] += loss;
                        sumBlocksEntropy += b * entropy;
                        sumEntropy += entropy;
                        sumEntropySquared += entropy * entropy;
                    }
                }
            }
            tokens += (long) target.length * t;
        }
    }

    // routing_entropy.json and .png into --routing-analysis; returns the JSON
    private ObjectNode writeAnalysis(Score s, ObjectNode result) {
        ObjectNode a = JsonNodeFactory.instance.objectNode();
        a.put("model", result.get("model").asText());
        a.put("text", result.get("text").asText());
        a.put("routing", result.get("routing").asText());
        a.put("routed_layers", s.layers.size());
        a.put("tokens", s.tokens);
        double sumBlocks = 0;
        double sumBlocksSquared = 0;
        ArrayNode groups = a.putArray("by_routed_blocks");
        double[] blocks = new double[s.byBlocks.length];
        double[] entropy = new double[s.byBlocks.length];
        double[] loss = new double[s.byBlocks.length];
        String[] shares = new String[s.byBlocks.length];
        for (int b = 0; b < s.byBlocks.length; b++) {
            ObjectNode g = groups.addObject();
            long n = s.byBlocks[b];
            g.put("blocks", b);
            g.put("tokens", n);
            g.put("share", (double) n / s.tokens);
            g.put("mean_entropy", n == 0 ? null : s.entropyByBlocks[b] / n);
            g.put("mean_loss", n == 0 ? null : s.lossByBlocks[b] / n);
            sumBlocks += (double) b * n;
            sumBlocksSquared += (double) b * b * n;
            blocks[b] = b;
            entropy[b] = n == 0 ? Double.NaN : s.entropyByBlocks[b] / n;
            loss[b] = n == 0 ? Double.NaN : s.lossByBlocks[b] / n;
            shares[b] = String.format(Locale.ROOT, "%.1f%%", 100.0 * n / s.tokens);
        }
        double n = s.tokens;
        double covariance = s.sumBlocksEntropy / n - (sumBlocks / n) * (s.sumEntropy / n);
        double blocksSd = Math.sqrt(sumBlocksSquared / n - Math.pow(sumBlocks / n, 2));
        double entropySd = Math.sqrt(s.sumEntropySquared / n - Math.pow(s.sumEntropy / n, 2));
        a.put("mean_routed_blocks", sumBlocks / n);
        a.put("correlation_blocks_entropy", blocksSd == 0 || entropySd == 0 ? null : covariance / (blocksSd * entropySd));
        AtomicFiles.write(analysisDir.resolve("routing_entropy.json"),
                o -> o.write(a.toPrettyString().getBytes(StandardCharsets.UTF_8)));
        List<Integer> present = new ArrayList<>();
        for (int b = 0; b < blocks.length; b++) {
            if (s.byBlocks[b] > 0) {
                present.add(b);
            }
        }
        double[] x = present.stream().mapToDouble(b -> blocks[b]).toArray();
        Charts.lines("Prediction entropy by the routed blocks a token went through",
                a.get("text").asText() + "; routing " + a.get("routing").asText() + "; points labelled with their share of tokens",
                Charts.Axis.counts("routed blocks that processed the token (of " + s.layers.size() + ")"),
                new Charts.Axis("nats", false),
                List.of(new Charts.Line("mean entropy of the next-byte prediction", x, present.stream().mapToDouble(b -> entropy[b]).toArray(),
                                0, Charts.Look.SOLID).withLabels(present.stream().map(b -> shares[b]).toArray(String[]::new)),
                        new Charts.Line("mean loss", x, present.stream().mapToDouble(b -> loss[b]).toArray(), 2, Charts.Look.DASHED)),
                analysisDir.resolve("routing_entropy.png"));
        return a;
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
            int[] blocks = score.byBlocks.length == 0 ? null : new int[n * t];
            if (rule.causal()) {
                if (causal == null) {
                    causal = runtime.openCausal(model, rule, n, n * t, t, null, DType.F32);
                }
                causal.reset();
                causal.runSequences(input);
                logits = causal.logits();
                for (int j = 0; j < score.layers.size(); j++) {
                    score.routed[j] += causal.routedTokens(score.layers.get(j));
                    if (blocks != null) {
                        int[] routed = causal.routed(score.layers.get(j));
                        for (int row = 0; row < n * t; row++) {
                            blocks[row] += routed[row];
                        }
                    }
                }
            } else {
                if (topK == null) {
                    topK = runtime.open(model, n, t);
                    topK.keepRoutingOutputs(blocks != null);
                }
                topK.run(input);
                logits = topK.logits();
                for (int j = 0; j < score.layers.size(); j++) {
                    score.routed[j] += (long) n * topK.capacity();
                    if (blocks != null) {
                        int[] selected = topK.selected(score.layers.get(j));
                        int k = topK.capacity();
                        for (int b = 0; b < n; b++) {
                            for (int i = 0; i < k; i++) {
                                blocks[b * t + selected[b * k + i]]++;
                            }
                        }
                    }
                }
            }
            Logits.requireFinite(logits, 0, n * t, vocab, row -> "window position " + row % t, "the model's weights are not usable");
            score.add(logits, target, vocab, blocks);
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
        JsonNode analysis = r.get("routing_analysis");
        if (analysis != null) {
            System.out.printf(Locale.ROOT, "by blocks   tokens by the routed blocks that processed them: share, mean prediction entropy, mean loss "
                    + "(correlation of blocks and entropy %s)%n", analysis.get("correlation_blocks_entropy").isNull() ? "none"
                    : String.format(Locale.ROOT, "%+.3f", analysis.get("correlation_blocks_entropy").asDouble()));
            for (JsonNode g : analysis.get("by_routed_blocks")) {
                System.out.printf(Locale.ROOT, "            %d: %6.2f%%  %s  %s%n", g.get("blocks").asInt(), 100 * g.get("share").asDouble(),
                        g.get("mean_entropy").isNull() ? "-" : String.format(Locale.ROOT, "%.4f", g.get("mean_entropy").asDouble()),
                        g.get("mean_loss").isNull() ? "-" : String.format(Locale.ROOT, "%.4f", g.get("mean_loss").asDouble()));
            }
        }
    }
}
