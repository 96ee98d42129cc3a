package dev.mod.cli;

import dev.mod.ModException;
import dev.mod.backend.Backend;
import dev.mod.data.ByteTokenizer;
import dev.mod.io.AtomicFiles;
import dev.mod.io.ModelFile;
import dev.mod.io.SafetensorsWriter;
import dev.mod.io.TextFile;
import dev.mod.model.DType;
import dev.mod.model.Model;
import dev.mod.model.Tensor;
import dev.mod.plan.CausalPass;
import dev.mod.plan.ExpertChoice;
import dev.mod.plan.ForwardPass;
import dev.mod.plan.Logits;
import dev.mod.plan.RoutingRule;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "forward", mixinStandardHelpOptions = true,
        description = {"Run a batch of token sequences through a model and write the logits, and for each routed "
                + "layer the routing decisions and the router logits, as a safetensors file:",
                "  --routing topk (default):  logits F32 [B,T,V], layers.{i}.selected I32 [B,k], layers.{i}.router F32 [B,T]",
                "                             and with experts layers.{i}.experts.{e}.selected I32 [B,k_e] (rows of the n the",
                "                             block's feed-forward sees) and layers.{i}.experts.{e}.probability F32 [B,n]",
                "  a causal rule:             logits F32 [B,T,V], layers.{i}.routed I32 [B,T] (1: processed), "
                        + "layers.{i}.router F32 [B,T]"})
final class ForwardCommand implements Callable<Integer> {
    @Mixin
    ModelFileOption model;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Tokens tokens;

    static final class Tokens {
        @Option(names = "--tokens", required = true, paramLabel = "\"1,2,3;4,5,6\"",
                description = "Token ids; rows (sequences, all of one length) separated by ';'.")
        String inline;

        @Option(names = "--tokens-file", required = true, paramLabel = "FILE",
                description = "A file of token ids: one row per line (or ';'), ids separated by ',' or spaces.")
        Path file;

        @Option(names = "--text", required = true, paramLabel = "FILE|-",
                description = "One sequence: BOS, then the UTF-8 bytes of a file (or of standard input for -), as generate encodes a prompt.")
        String text;

        int[][] read() {
            if (text != null) {
                return new int[][] {ByteTokenizer.encodePrompt(TextFile.readFileOrStandardInput(text, "text"))};
            }
            return inline != null ? TokenBatch.parse(inline) : TokenBatch.read(file);
        }
    }

    @Option(names = "--out", required = true, paramLabel = "OUT.safetensors", description = "The output file.")
    Path out;

    @Mixin
    BackendOption backend;

    @Mixin
    RoutingOptions routing;

    @Option(names = "--allow-non-finite", description = "Write the output even when logits are NaN or infinite (for debugging a model; "
            + "without it such logits are a one-line error and nothing is written).")
    boolean allowNonFinite;

    @Override
    public Integer call() {
        AtomicFiles.refuseInputs(out, this.model.path, tokens.file != null ? tokens.file
                : tokens.text != null && !tokens.text.equals("-") ? Path.of(tokens.text) : null);
        int[][] batch = tokens.read();
        try (Model model = ModelFile.load(this.model.path); Backend runtime = backend.start()) {
            RoutingRule rule = routing.rule(model, RoutingRule.TOP_K);
            if (rule.causal()) {
                causal(model, runtime, rule, batch);
            } else if (rule instanceof RoutingRule.TopK) {
                topK(model, runtime, batch);
            } else {
                throw new ModException("routing: rule \"" + rule.name() + "\" is a training control; forward takes topk or a causal rule");
            }
        }
        return 0;
    }

    private void topK(Model model, Backend runtime, int[][] batch) {
        try (ForwardPass plan = runtime.open(model, batch.length, batch[0].length)) {
            int b = batch.length;
            int t = batch[0].length;
            plan.run(batch);
            checkFinite(plan.logits(), b, t, model.config().vocabSize());
            List<Tensor> outputs = new ArrayList<>();
            outputs.add(Tensor.of("logits", plan.logits(), b, t, model.config().vocabSize()));
            for (int layer : plan.routedLayers()) {
                outputs.add(Tensor.ofInts("layers." + layer + ".selected", plan.selected(layer), b, plan.capacity()));
                outputs.add(Tensor.of("layers." + layer + ".router", plan.routerLogits(layer), b, t));
            }
            for (int layer = 0; model.config().hasExperts() && layer < model.config().nLayers(); layer++) {
                ExpertChoice choice = plan.expertChoice(layer);
                for (int e = 0; e < model.config().experts().count(); e++) {
                    String p = "layers." + layer + ".experts." + e + ".";
                    outputs.add(Tensor.ofInts(p + "selected", choice.selected()[e], b, choice.rowsPerExpert()));
                    outputs.add(Tensor.of(p + "probability", choice.probabilities()[e], b, choice.n()));
                }
            }
            write(model, plan.backend(), "topk", outputs);
            int routed = plan.routedLayers().size();
            System.out.printf("wrote %s: logits [%d, %d, %d], %d routed %s (k = %d), backend %s%n",
                    out, b, t, model.config().vocabSize(), routed, routed == 1 ? "layer" : "layers", plan.capacity(), plan.backend());
        }
    }

    /** The batch under a causal rule: every row run in one chunk, each with its own cache. */
    private void causal(Model model, Backend runtime, RoutingRule rule, int[][] batch) {
        int b = batch.length;
        int t = batch[0].length;
        if (t > model.config().maxSeqLen()) {
            throw new ModException("sequence length " + t + " is above the model's max_seq_len " + model.config().maxSeqLen());
        }
        try (CausalPass plan = runtime.openCausal(model, rule, b, b * t, t, null, DType.F32)) {
            runCausal(model, plan, rule, batch);
        }
    }

    private void runCausal(Model model, CausalPass plan, RoutingRule rule, int[][] batch) {
        int b = batch.length;
        int t = batch[0].length;
        plan.runSequences(batch);
        checkFinite(plan.logits(), b, t, model.config().vocabSize());
        List<Tensor> outputs = new ArrayList<>();
        outputs.add(Tensor.of("logits", plan.logits(), b, t, model.config().vocabSize()));
        StringBuilder fractions = new StringBuilder();
        for (int layer : plan.routedLayers()) {
            outputs.add(Tensor.ofInts("layers." + layer + ".routed", plan.routed(layer), b, t));
            outputs.add(Tensor.of("layers." + layer + ".router", plan.routerLogits(layer), b, t));
            fractions.append(String.format(" %d:%.3f", layer, plan.routedFraction(layer)));
        }
        write(model, plan.backend(), rule.name(), outputs);
        System.out.printf("wrote %s: logits [%d, %d, %d], routing %s, routed fraction per layer%s, backend %s%n",
                out, b, t, model.config().vocabSize(), rule.name(), fractions.length() == 0 ? " (none routed)" : fractions,
                plan.backend());
    }

    private void checkFinite(float[] logits, int b, int t, int vocab) {
        if (!allowNonFinite) {
            Logits.requireFinite(logits, 0, b * t, vocab, row -> "sequence " + row / t + ", position " + row % t,
                    "--allow-non-finite writes them anyway");
        }
    }

    private void write(Model model, String backendName, String rule, List<Tensor> outputs) {
        Map<String, String> metadata = new LinkedHashMap<>();
        metadata.put("format", "mod-forward");
        metadata.put("backend", backendName);
        metadata.put("routing", rule);
        metadata.put("config", model.config().toJson());
        SafetensorsWriter.write(out, metadata, outputs);
    }
}
