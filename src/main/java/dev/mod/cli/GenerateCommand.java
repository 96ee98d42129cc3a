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
     * With the warm-up on the generation's own cache (docs/generation.md), 32 to 128 steps gave the same decode rates
     * on the bench-size models in fresh JVMs (AMD EPYC family 25, 2 cores, 2026-12-06, 64 tokens after 960 bytes);
     * 256 only made the warm-up longer.
     */
    static final int DEFAULT_WARMUP_STEPS = 128;

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

    @Option(names = "--warmup-steps", paramLabel = "N", description = "Decode steps run after the prompt's prefill, on the "
            + "generation's own cache (rolled back to the prompt after every 32), so that the decode path is compiled, at "
            + "the generation's context, before the first token (default on the cpu backend: 128; on the others 0; 0: none).")
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
        err.printf("time to first token: %.1f ms (prefill %.1f ms%s)%n", r.timeToFirstTokenMs(), r.prefillMs(), r.warmupMs() == 0 ? ""
                : String.format(", warm-up %.1f ms: decode steps that compile the decode path, --warmup-steps 0 to skip", r.warmupMs()));
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
