package dev.mod.bench;

import dev.mod.backend.Backend;
import dev.mod.backend.Backends;
import dev.mod.model.DType;
import dev.mod.model.Experts;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.Presets;
import dev.mod.plan.ForwardPass;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * A full forward pass of the benchmark model (8 layers, d = 512) over one sequence on the cpu backend:
 * the MoD model (every other block routed at 12.5%) against its dense counterpart, same weights; and both with a
 * mixture of 4 experts at capacity 1/4 of the dense hidden size in every block (moe, mode-staged: the same
 * feed-forward FLOPs as dense and MoD, plus the router's).
 * Run with -prof gc to see the allocation per forward pass (gc.alloc.rate.norm).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 3)
@Measurement(iterations = 5, time = 3)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class ModelBenchmark {
    @Param({"1024", "2048"})
    public int seqLen;

    @Param({"dense", "mod", "moe", "mode-staged"})
    public String model;

    /** How the matrices are stored: f32, or bf16 (kept in 16 bits by the cpu backend). */
    @Param({"f32", "bf16"})
    public String dtype;

    private Backend cpu;
    private ForwardPass plan;
    private int[][] tokens;

    @Setup(Level.Trial)
    public void setUp() {
        ModelConfig config = Presets.get("bench");
        if (model.equals("moe") || model.equals("mode-staged")) {
            config = config.withExperts(new Experts(4, 0, 0.25, config.hiddenDim()));
        }
        Model mod = ModelInit.random(config, 1).withMatrixType(DType.valueOf(dtype.toUpperCase(java.util.Locale.ROOT)));
        cpu = Backends.start("cpu");
        plan = cpu.open(model.equals("dense") || model.equals("moe") ? mod.asDense() : mod, 1, seqLen);
        tokens = new int[1][seqLen];
        SplittableRandom random = new SplittableRandom(2);
        for (int t = 0; t < seqLen; t++) {
            tokens[0][t] = random.nextInt(config.vocabSize());
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        plan.close();
        cpu.close();
    }

    @Benchmark
    public float[] forward() {
        plan.run(tokens);
        return plan.logits();
    }
}
