package dev.mod.cli;

import dev.mod.ModException;
import dev.mod.backend.Backend;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelCost;
import dev.mod.plan.ForwardPass;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

@Command(name = "demo", mixinStandardHelpOptions = true,
        description = "Run one batch through a MoD model and through its dense counterpart (same weights, no routing), "
                + "and compare FLOPs and wall-clock time. Default: the 'bench' preset (8 layers, d = 512), random weights and tokens from the seed.")
final class DemoCommand implements Callable<Integer> {
    @ArgGroup(exclusive = true)
    ModelSource source = defaultSource();

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random weights and tokens (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--seq", defaultValue = "1024", paramLabel = "T", description = "Tokens per sequence (default: ${DEFAULT-VALUE}).")
    int seqLen;

    @Option(names = "--batch", defaultValue = "1", paramLabel = "B", description = "Sequences per batch (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--repeats", defaultValue = "5", description = "Timed runs of each model after 2 s of warm-up runs; the median is shown (default: ${DEFAULT-VALUE}).")
    int repeats;

    @Mixin
    BackendOption backend;

    private static ModelSource defaultSource() {
        ModelSource s = new ModelSource();
        s.preset = "bench";
        return s;
    }

    @Override
    public Integer call() {
        if (repeats < 1) {
            throw new ModException("--repeats must be at least 1");
        }
        try (Model mod = source.open(seed); Backend runtime = backend.start()) {
            ModelConfig c = mod.config();
            if (c.routedLayers().isEmpty()) {
                throw new ModException("the model has no routed layers: nothing to compare with its dense counterpart");
            }
            Model dense = mod.asDense();
            int[][] tokens = randomTokens(c.vocabSize());
            try (ForwardPass modPlan = runtime.open(mod, batch, seqLen);
                 ForwardPass densePlan = runtime.open(dense, batch, seqLen)) {
                compare(c, modPlan, densePlan, tokens);
            }
        }
        return 0;
    }

    private void compare(ModelConfig c, ForwardPass modPlan, ForwardPass densePlan, int[][] tokens) {
        System.out.printf("model    %s: %s%n", source.describe(seed), Describe.config(c));
        System.out.printf("batch    B = %d, T = %d; routed layers process k = %d tokens per sequence; backend %s%n%n",
                batch, seqLen, modPlan.capacity(), backend.name);
        modPlan.keepRoutingOutputs(false);
        densePlan.keepRoutingOutputs(false);
        double modMs = medianMillis(modPlan, tokens);
        double denseMs = medianMillis(densePlan, tokens);
        modPlan.keepRoutingOutputs(true);
        modPlan.run(tokens);
        double modFlops = batch * ModelCost.forwardFlops(c, seqLen);
        double denseFlops = batch * ModelCost.forwardFlops(c.dense(), seqLen);
        System.out.printf("%-8s %14s %12s %12s%n", "", "FLOPs", "time (ms)", "GFLOP/s");
        System.out.printf("%-8s %14s %12.2f %12.2f%n", "dense", Describe.flops(denseFlops), denseMs, denseFlops / denseMs / 1e6);
        System.out.printf("%-8s %14s %12.2f %12.2f%n", "MoD", Describe.flops(modFlops), modMs, modFlops / modMs / 1e6);
        System.out.printf("%nMoD / dense: FLOPs %.3f, time %.3f (median of %d runs each)%n",
                modFlops / denseFlops, modMs / denseMs, repeats);
        System.out.printf("KV-cache bytes per token: MoD %.0f, dense %.0f (%.3f)%n",
                ModelCost.kvCacheBytesPerToken(c), ModelCost.kvCacheBytesPerToken(c.dense()),
                ModelCost.kvCacheBytesPerToken(c) / ModelCost.kvCacheBytesPerToken(c.dense()));
        int firstRouted = modPlan.routedLayers().get(0);
        int[] sel = modPlan.selected(firstRouted);
        System.out.printf("layer %d selected positions (sequence 0): %s%n", firstRouted,
                Arrays.toString(Arrays.copyOf(sel, Math.min(16, modPlan.capacity())))
                        + (modPlan.capacity() > 16 ? " ..." : ""));
    }

    private int[][] randomTokens(int vocab) {
        SplittableRandom random = new SplittableRandom(seed);
        int[][] tokens = new int[batch][seqLen];
        for (int[] row : tokens) {
            for (int t = 0; t < seqLen; t++) {
                row[t] = random.nextInt(vocab);
            }
        }
        return tokens;
    }

    /** Median of the timed runs, after warm-up runs until the JIT has settled (2 s, at least 2 runs). */
    private double medianMillis(ForwardPass plan, int[][] tokens) {
        long warmupEnd = System.nanoTime() + 2_000_000_000L;
        for (int i = 0; i < 2 || System.nanoTime() < warmupEnd; i++) {
            plan.run(tokens);
        }
        double[] ms = new double[repeats];
        for (int i = 0; i < repeats; i++) {
            long start = System.nanoTime();
            plan.run(tokens);
            ms[i] = (System.nanoTime() - start) / 1e6;
        }
        Arrays.sort(ms);
        return repeats % 2 == 1 ? ms[repeats / 2] : (ms[repeats / 2 - 1] + ms[repeats / 2]) / 2;
    }
}
