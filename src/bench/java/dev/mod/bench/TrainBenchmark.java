package dev.mod.bench;

import dev.mod.backend.Backend;
import dev.mod.backend.Backends;
import dev.mod.cpu.CpuTrainingKernels;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.Presets;
import dev.mod.plan.ForwardPass;
import dev.mod.train.AdamW;
import dev.mod.train.Parameters;
import dev.mod.train.TrainingPlan;
import dev.mod.plan.RoutingRule;
import org.openjdk.jmh.annotations.AuxCounters;
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
 * A training step of the benchmark model (8 layers, d = 512; MoD: every other block routed at 12.5%)
 * on a batch of 4 sequences of 512 tokens, on all cores: forward, backward, clipping and the AdamW update,
 * against the inference forward pass of the cpu backend on the same batch (the anchor of "a step costs at
 * most 3.5 forward passes"). Each round runs two inference forward passes (the second timed) and then one
 * training step (timed): the two are measured side by side in the same JVM (same JIT state) and within
 * seconds of each other, so that the ratio is not skewed by a shared machine's drift or by two JVMs
 * compiling differently, both of which moved it by 10-20% when they were separate benchmarks. The counters give each iteration's
 * summed times and rounds; the report takes medians over iterations. A step takes seconds, so the warm-up
 * runs three iterations of 10 s, enough for the JIT to finish compiling every kernel. Run with -prof gc to
 * see what a round allocates.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 10)
@Measurement(iterations = 5, time = 10)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class TrainBenchmark {
    static final int BATCH = 4;
    static final int SEQ = 512;

    @Param({"dense", "mod"})
    public String model;

    private TrainingPlan plan;
    private Parameters params;
    private Parameters grads;
    private AdamW adam;
    private CpuTrainingKernels trainingKernels;
    private Backend cpu;
    private ForwardPass forward;
    private int[][] input;
    private int[][] target;

    /** One iteration's summed milliseconds of inference forward passes and of training steps, and its rounds. */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.EVENTS)
    public static class Times {
        public double forwardMs;
        public double stepMs;
        public long rounds;

        @Setup(Level.Iteration)
        public void reset() {
            forwardMs = 0;
            stepMs = 0;
            rounds = 0;
        }
    }

    @Setup(Level.Trial)
    public void setUp() {
        ModelConfig config = Presets.get("bench");
        Model m = ModelInit.random(config, 1);
        if (model.equals("dense")) {
            m = m.asDense();
        }
        params = Parameters.of(m);
        grads = params.zerosLike();
        adam = new AdamW(params, 0.1);
        int threads = Runtime.getRuntime().availableProcessors();
        trainingKernels = new CpuTrainingKernels(threads);
        plan = new TrainingPlan(m.config(), params, grads, new TrainingPlan.AuxWeights(0.01, 0), RoutingRule.TOP_K, BATCH, SEQ,
                trainingKernels);
        cpu = Backends.cpu(threads);
        forward = cpu.open(m, BATCH, SEQ);
        SplittableRandom random = new SplittableRandom(2);
        input = new int[BATCH][SEQ];
        target = new int[BATCH][SEQ];
        for (int b = 0; b < BATCH; b++) {
            for (int t = 0; t < SEQ; t++) {
                input[b][t] = random.nextInt(256);
                target[b][t] = random.nextInt(256);
            }
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        plan.close();
        cpu.close();
    }

    @Benchmark
    public double forwardThenStep(Times times) {
        // the timed forward pass follows an untimed one, as it would in a loop of forward passes: a training
        // step just before would have evicted its buffers from the caches and made the anchor slower
        forward.run(input);
        long t0 = System.nanoTime();
        forward.run(input);
        long t1 = System.nanoTime();
        double loss = plan.forward(input, target);
        plan.backward();
        trainingKernels.clip(grads, 1.0);
        trainingKernels.update(adam, params, grads, 1e-4);
        plan.weightsChanged();
        long t2 = System.nanoTime();
        times.forwardMs += (t1 - t0) / 1e6;
        times.stepMs += (t2 - t1) / 1e6;
        times.rounds++;
        return loss + forward.logits()[0];
    }
}
