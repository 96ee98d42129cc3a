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
                + "and compare FLOPs and wall-clock time (both warmed up, then timed in alternating rounds; medians and spread). Default: the 'bench' preset (8 layers, d = 512), random weights and tokens from the seed.")
final class DemoCommand implements Callable<Integer> {
    @ArgGroup(exclusive = true)
    ModelSource source = defaultSource();

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random weights and tokens (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--seq", defaultValue = "1024", paramLabel = "T", description = "Tokens per sequence (default: ${DEFAULT-VALUE}).")
    int seqLen;

    @Option(names = "--batch", defaultValue = "1", paramLabel = "B", description = "Sequences per batch (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--repeats", defaultValue = "15", description = "Timed rounds, each one run of MoD and one of dense (default: ${DEFAULT-VALUE}).")
    int repeats;

    @Option(names = "--warmup-seconds", defaultValue = "2", paramLabel = "S",
            description = "Warm-up before timing, both models in turn, at least 3 runs each (default: ${DEFAULT-VALUE}).")
    double warmupSeconds;

    @Mixin
    BackendOption backend;

    private static ModelSource defaultSource() {
        ModelSource s = new ModelSource();
        s.preset = "bench";
        return s;
    }

    @Override
    public Integer call() {
        if (repeats < 3) {
            throw new ModException("--repeats must be at least 3, got " + repeats);
        }
        if (!(warmupSeconds >= 0 && warmupSeconds <= 3600)) {
            throw new ModException("--warmup-seconds must be from 0 to 3600, got " + warmupSeconds);
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
        Timings t = time(modPlan, densePlan, tokens);
        modPlan.keepRoutingOutputs(true);
        modPlan.run(tokens);
        double modFlops = batch * ModelCost.forwardFlops(c, seqLen);
        double denseFlops = batch * ModelCost.forwardFlops(c.dense(), seqLen);
        double modMs = quantile(t.mod, 0.5);
        double denseMs = quantile(t.dense, 0.5);
        System.out.printf("%-8s %14s %12s %19s %10s%n", "", "FLOPs", "median (ms)", "min - max (ms)", "GFLOP/s");
        System.out.printf("%-8s %14s %12.2f %9.2f - %-7.2f %10.2f%n", "dense", Describe.flops(denseFlops), denseMs,
                quantile(t.dense, 0), quantile(t.dense, 1), denseFlops / denseMs / 1e6);
        System.out.printf("%-8s %14s %12.2f %9.2f - %-7.2f %10.2f%n", "MoD", Describe.flops(modFlops), modMs,
                quantile(t.mod, 0), quantile(t.mod, 1), modFlops / modMs / 1e6);
        double low = quantile(t.ratios, 0.25);
        double high = quantile(t.ratios, 0.75);
        System.out.printf("%nMoD / dense: FLOPs %.3f, time %.3f (median of %d rounds, each one run of both; middle half of the "
                + "rounds' ratios %.3f - %.3f)%n", modFlops / denseFlops, quantile(t.ratios, 0.5), repeats, low, high);
        if (high > 1.25 * low) {
            System.out.printf("the rounds disagree by more than 25%%: the machine was busy; rerun with more --repeats, or use "
                    + "`mod study`, which times every capacity this way with more warm-up%n");
        }
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

    /** Per round: MoD's time, dense's time, and their ratio. */
    private record Timings(double[] mod, double[] dense, double[] ratios) {
    }

    /**
     * Both models warmed up in turn (the JIT compiles what either needs before any timing), then timed in rounds of
     * one run each, so that a machine that slows down or speeds up shifts both alike: the ratio is taken per round.
     */
    private Timings time(ForwardPass modPlan, ForwardPass densePlan, int[][] tokens) {
        long warmupEnd = System.nanoTime() + (long) (warmupSeconds * 1e9);
        for (int i = 0; i < 3 || System.nanoTime() < warmupEnd; i++) {
            modPlan.run(tokens);
            densePlan.run(tokens);
        }
        Timings t = new Timings(new double[repeats], new double[repeats], new double[repeats]);
        for (int i = 0; i < repeats; i++) {
            // alternate which goes first, so neither always runs right after the other
            boolean modFirst = i % 2 == 0;
            double first = millis(modFirst ? modPlan : densePlan, tokens);
            double second = millis(modFirst ? densePlan : modPlan, tokens);
            t.mod[i] = modFirst ? first : second;
            t.dense[i] = modFirst ? second : first;
            t.ratios[i] = t.mod[i] / t.dense[i];
        }
        return t;
    }

    private static double millis(ForwardPass plan, int[][] tokens) {
        long start = System.nanoTime();
        plan.run(tokens);
        return (System.nanoTime() - start) / 1e6;
    }

    /** The q-quantile by linear interpolation between the sorted values (q = 0.5: the median). */
    private static double quantile(double[] values, double q) {
        double[] v = values.clone();
        Arrays.sort(v);
        double pos = q * (v.length - 1);
        int lo = (int) Math.floor(pos);
        int hi = Math.min(lo + 1, v.length - 1);
        return v[lo] + (pos - lo) * (v[hi] - v[lo]);
    }
}
