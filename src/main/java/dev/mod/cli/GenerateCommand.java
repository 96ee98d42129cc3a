package dev.mod.cli;

import dev.mod.backend.Backend;
import dev.mod.generate.Generator;
import dev.mod.io.ModelFile;
import dev.mod.io.TextFile;
import dev.mod.model.DType;
import dev.mod.model.Model;
import dev.mod.plan.RoutingRule;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "generate", mixinStandardHelpOptions = true,
        description = {"Generate text from byte-level prompts with causal routing and a routed KV cache.",
                "The text goes to standard output (streamed for one prompt); time to first token, decode tokens/s, "
                        + "the routed fraction per routed layer and the KV-cache size against the dense model's go to "
                        + "standard error."})
final class GenerateCommand implements Callable<Integer> {
    /**
     * On the cpu backend in a fresh JVM (Zen 5), the calibrated bench model's 64 tokens after a 1983-byte prompt, at
     * context 2047, took 3.0-3.6 ms each after 128 steps, 2.9 after 256 and 2.8-2.9 after 512, against 2.63 in the warmed
     * decode benchmark the same day; 256 steps take about 3 s, and the time to first token fell from 2 s to 0.6-0.7
     * (README, "Generation").
     */
    static final int DEFAULT_WARMUP_STEPS = 256;

    @Mixin
    ModelFileOption model;

    @Option(names = "--prompt", paramLabel = "TEXT",
            description = "A prompt; give several (and --prompt-file) to generate for all of them in one batch.")
    List<String> prompts = new ArrayList<>();

    @Option(names = "--prompt-file", paramLabel = "FILE|-", description = "A prompt read from a UTF-8 file, exactly as it is "
            + "(a final new line included), or from standard input for -; may be given several times.")
    List<String> promptFiles = new ArrayList<>();

    @Spec
    CommandSpec spec;

    @Option(names = "--max-tokens", defaultValue = "64", paramLabel = "N",
            description = "Tokens to generate per prompt at most (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--temperature", defaultValue = "0.8", description = "0 picks the most likely token (default: ${DEFAULT-VALUE}).")
    double temperature;

    @Option(names = "--top-p", defaultValue = "0.95", description = "Nucleus sampling mass (default: ${DEFAULT-VALUE}).")
    double topP;

    @Option(names = "--seed", defaultValue = "0", description = "Sampling seed (default: ${DEFAULT-VALUE}).")
    long seed;

    /** A causal rule (default: calibrated if the model was calibrated, else predictor if it has one, else router). */
    @Mixin
    RoutingOptions routing;

    @Option(names = "--warmup-steps", paramLabel = "N", description = "Decode steps run before the prompt on a throwaway "
            + "cache, with a prefill of a chunk of the prompt before every 32, so that both paths are compiled when the "
            + "first token is timed (default on the cpu backend: 256; on the others 0; 0: none).")
    Integer warmupSteps;

    @Option(names = "--kv-cache", paramLabel = "TYPE", description = "f32 or bf16: what the KV cache keeps keys and values in "
            + "(default: bf16 when the model's k and v projections are 16-bit, else f32; the tornado backend keeps f32).")
    CacheChoice kvCache;

    /** What --kv-cache takes. */
    enum CacheChoice {
        f32(DType.F32), bf16(DType.BF16);

        final DType type;

        CacheChoice(DType type) {
            this.type = type;
        }
    }

    @Mixin
    BackendOption backend;

    @Override
    public Integer call() {
        List<String> all = new ArrayList<>(prompts);
        if (promptFiles.stream().filter("-"::equals).count() > 1) {
            throw new ParameterException(spec.commandLine(), "--prompt-file -: standard input can be read once");
        }
        promptFiles.forEach(f -> all.add(TextFile.readFileOrStandardInput(f, "prompt file")));
        if (all.isEmpty()) {
            throw new ParameterException(spec.commandLine(), "generate needs a prompt: --prompt TEXT or --prompt-file FILE|-");
        }
        try (Model model = ModelFile.load(this.model.path); Backend runtime = backend.start()) {
            int warmup = warmupSteps != null ? warmupSteps
                    : runtime.name().equals("cpu") ? DEFAULT_WARMUP_STEPS : 0;
            Generator.Settings settings = new Generator.Settings(maxTokens, temperature, topP, seed, warmup);
            RoutingRule rule = routing.causalRule(model, RoutingRule.defaultFor(model));
            DType cacheType = kvCache != null ? kvCache.type : runtime.cacheType(model);
            PrintStream out = System.out;
            boolean streaming = all.size() == 1;
            Generator.Result result = Generator.generate(model, runtime.causal(model, rule, cacheType), all, settings,
                    streaming ? piece -> {
                        out.print(piece);
                        out.flush();
                    } : null);
            if (streaming) {
                out.println();
            } else {
                for (int i = 0; i < result.texts().size(); i++) {
                    out.printf("[%d] %s%n", i + 1, result.texts().get(i));
                }
            }
            report(System.err, rule, result);
        }
        return 0;
    }

    private static void report(PrintStream err, RoutingRule rule, Generator.Result r) {
        if (r.warmupMs() > 0) {
            err.printf("warm-up: %.1f ms before the prompt (--warmup-steps 0 to skip)%n", r.warmupMs());
        }
        err.printf("time to first token: %.1f ms%n", r.timeToFirstTokenMs());
        err.printf("decode: %d tokens in %.1f ms, %.1f tokens/s%n", r.decodeTokens(), r.decodeMs(), r.decodeTokensPerSecond());
        StringBuilder layers = new StringBuilder();
        for (Map.Entry<Integer, Double> e : r.prefillRouted().entrySet()) {
            layers.append(String.format(" %d: %.3f / %.3f", e.getKey(), e.getValue(), r.decodeRouted().get(e.getKey())));
        }
        err.printf("routing %s; routed fraction per layer (prompt / decode):%s%n", rule.name(),
                layers.length() == 0 ? " no routed layers" : layers);
        err.printf("KV cache (%s): %,d bytes for %d tokens; the dense model would hold %,d (%.3fx)%n",
                r.kvType(), r.kvBytes(), r.contextTokens(), r.denseKvBytes(), (double) r.kvBytes() / r.denseKvBytes());
    }
}
