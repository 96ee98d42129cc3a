package dev.mod.bench;

import dev.mod.backend.Backend;
import dev.mod.backend.Backends;
import dev.mod.data.ByteTokenizer;
import dev.mod.data.JdkSourceText;
import dev.mod.model.DType;
import dev.mod.model.Experts;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.Presets;
import dev.mod.plan.CausalPass;
import dev.mod.plan.CausalPlan;
import dev.mod.plan.RoutingRule;
import dev.mod.plan.Kernels;
import dev.mod.plan.KvCache;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.Arrays;
import java.util.concurrent.TimeUnit;

/**
 * Decode steps of the benchmark model (8 layers, d = 512) on the cpu backend: the MoD model (every other
 * block routed, calibrated rule set to route 12.5%) against its dense counterpart, same weights. The text
 * is a stretch of the JDK's Java sources; the calibration used the stretch before it (4 sequences of 1024
 * tokens), so the routed fraction measured here is on text the thresholds have not seen. The cache holds
 * the first context - STEPS tokens; an invocation takes STEPS decode steps of one sequence (teacher-forced
 * with the text's next bytes), which bring it to the context, then rolls the cache back, so every
 * invocation decodes the same tokens at the same positions. STEPS is large enough (4 x 128 routing
 * decisions) for the routed fraction of the sample to be near the calibrated one. Scores are ms per decode
 * step; the counters give the routed fraction and the KV cache against the dense model's. The cache is the model's
 * default (BF16 for BF16 weights) unless -p cache=f32 or bf16 asks for one.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 3)
@Measurement(iterations = 5, time = 3)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class DecodeBenchmark {
    static final int STEPS = 128;
    /** Where the context starts in the JDK text: after the calibration text. */
    private static final int CONTEXT_OFFSET = 1 << 16;
    private static final int CALIBRATION_SEQ = 1024;
    private static final int CALIBRATION_SEQUENCES = 4;

    @Param({"1024", "2048"})
    public int context;

    /** dense, mod, and both with 4 experts at capacity 1/4 of the dense hidden size (moe, mode-staged). */
    @Param({"dense", "mod", "moe", "mode-staged"})
    public String model;

    /** How the matrices are stored: f32, or bf16 (kept in 16 bits by the cpu backend, read half as much). */
    @Param({"f32", "bf16"})
    public String dtype;

    /** The KV cache: "model" (the model's default, KvCache.typeFor: BF16 for bf16 weights), f32 or bf16. */
    @Param({"model"})
    public String cache;

    private Backend cpu;
    private CausalPass plan;
    private final int[] seq = {0};
    private final int[] tok = new int[1];
    private int[] next;

    /** Sums over an iteration's invocations; their ratios are what the report shows. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.EVENTS)
    public static class Counters {
        public long routedTokens;
        public long routingDecisions;
        public long kvBytes;
        public long denseKvBytes;
    }

    /**
     * What a decode benchmark runs for one (model, context): the model ("dense", or "mod" with its calibrated
     * thresholds), its rule, the prompt that fills the cache to context - steps, and the steps' tokens.
     */
    public record Workload(Model model, RoutingRule rule, int[] prompt, int[] next) {
    }

    /**
     * The workload of this benchmark for the bench preset, its matrices stored as `dtype`; calibrationKernels set the
     * thresholds of the MoD model (on the rounded weights).
     */
    public static Workload workload(String model, DType dtype, int context, int steps, Kernels calibrationKernels) {
        ModelConfig config = Presets.get("bench");
        if (model.equals("moe") || model.equals("mode-staged")) {
            config = config.withExperts(new Experts(4, 0, 0.25, config.hiddenDim()));
        }
        Model mod = ModelInit.random(config, 1).withMatrixType(dtype);
        byte[] text = JdkSourceText.read(CONTEXT_OFFSET + context);
        Model used = model.equals("dense") || model.equals("moe") ? mod.asDense() : mod;
        if (!used.config().routedLayers().isEmpty() || used.config().hasExperts()) {
            // MoD's thresholds, and the experts' (a causal pass routes experts by calibrated thresholds)
            int[][] calibration = ByteTokenizer.promptWindows(text,
                    CONTEXT_OFFSET - CALIBRATION_SEQUENCES * (CALIBRATION_SEQ - 1), CALIBRATION_SEQUENCES, CALIBRATION_SEQ);
            used = used.withCalibration(CausalPlan.calibrate(used, calibrationKernels, calibration));
        }
        int prefix = context - steps;
        int[] ids = ByteTokenizer.encode(Arrays.copyOfRange(text, CONTEXT_OFFSET, CONTEXT_OFFSET + context));
        int[] prompt = Arrays.copyOf(ids, prefix);
        prompt[0] = ByteTokenizer.BOS;
        RoutingRule rule = used.config().routedLayers().isEmpty() ? RoutingRule.ROUTER : RoutingRule.CALIBRATED;
        return new Workload(used, rule, prompt, Arrays.copyOfRange(ids, prefix, context));
    }

    @Setup(Level.Trial)
    public void setUp() {
        cpu = Backends.start("cpu");
        Workload w = workload(model, DType.valueOf(dtype.toUpperCase(java.util.Locale.ROOT)), context, STEPS, cpu.hostKernels("calibration"));
        DType cacheType = cache.equals("model") ? KvCache.typeFor(w.model()) : DType.valueOf(cache.toUpperCase(java.util.Locale.ROOT));
        plan = cpu.openCausal(w.model(), w.rule(), 1, w.prompt().length, w.model().config().maxSeqLen(), null, cacheType);
        plan.prefill(0, w.prompt());
        next = w.next();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        plan.close();
        cpu.close();
    }

    @Benchmark
    @OperationsPerInvocation(STEPS)
    public float[] step(Counters counters) {
        plan.resetCounts();
        for (int i = 0; i < STEPS; i++) {
            tok[0] = next[i];
            plan.run(seq, tok, 1);
        }
        for (int layer : plan.routedLayers()) {
            counters.routedTokens += plan.routedTokens(layer);
            counters.routingDecisions += plan.decisions(layer);
        }
        counters.kvBytes += plan.cacheBytes();
        counters.denseKvBytes += plan.denseCacheBytes(plan.length(0));
        plan.truncate(0, context - STEPS);
        return plan.logits();
    }
}
