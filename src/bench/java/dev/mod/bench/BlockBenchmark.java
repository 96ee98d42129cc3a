package dev.mod.bench;

import dev.mod.cpu.CpuKernels;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.Presets;
import dev.mod.plan.ForwardPlan;
import dev.mod.plan.Kernels;
import dev.mod.plan.Stage;
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

/**
 * One block of the benchmark model (d = 512, 8 heads, hidden 1376) over one sequence of T tokens on the
 * cpu backend: dense, or routed at a capacity. `block` runs all of the block's stages; `routing` runs
 * only the router, top-k, gather and scatter stages, so that routing's share of the block is
 * routing / block. The residual stream is restored before each call, so every call does the same work.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(java.util.concurrent.TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class BlockBenchmark {
    @Param({"1024", "2048"})
    public int seqLen;

    /** "dense", or the capacity of the routed block. */
    @Param({"dense", "0.125", "0.25", "0.5", "1.0"})
    public String capacity;

    private Kernels kernels;
    private ForwardPlan plan;
    private Stage[] block;
    private Stage[] routing;
    private float[] savedStream;

    @Setup(Level.Trial)
    public void setUp() {
        ModelConfig one = Presets.get("bench").oneBlock(capacity.equals("dense") ? null : Double.valueOf(capacity));
        Model model = ModelInit.random(one, 1);
        kernels = new CpuKernels();
        plan = new ForwardPlan(model, kernels, 1, seqLen);
        block = plan.stages().stream().filter(s -> s.name().startsWith("layer0.")).toArray(Stage[]::new);
        routing = plan.stages().stream().filter(s -> s.name().matches("layer0\\.(router|topk|gather|scatter)"))
                .toArray(Stage[]::new);
        // The block's input: random unit-scale rows, as embeddings would give.
        SplittableRandom random = new SplittableRandom(2);
        savedStream = plan.hidden().clone();
        for (int i = 0; i < savedStream.length; i++) {
            savedStream[i] = (float) random.nextGaussian();
        }
    }

    @Setup(Level.Invocation)
    public void restoreStream() {
        System.arraycopy(savedStream, 0, plan.hidden(), 0, savedStream.length);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        kernels.close();
    }

    @Benchmark
    public float[] block() {
        for (Stage s : block) {
            s.run(kernels);
        }
        return plan.hidden();
    }

    @Benchmark
    public float[] routing() {
        for (Stage s : routing) {
            s.run(kernels);
        }
        return plan.hidden();
    }
}
