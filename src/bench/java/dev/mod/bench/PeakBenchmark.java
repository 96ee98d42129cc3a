package dev.mod.bench;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
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

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * The machine's physical limits as the JVM reaches them, the anchors the other benchmarks are read against:
 * fma, each thread running CHAINS independent chains of Vector API FMAs (enough to hide the FMA latency) for
 * FMA_FLOPS (the iterations follow the vector width); read, each thread summing its own 256 MB of floats with vector loads
 * (what a decode step, which reads every weight once, is bound by), bytes = threads x 256 MB. One thread per
 * worker (a fixed pool of that many threads), so that every thread runs exactly one share.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "-Xmx2g"})
public class PeakBenchmark {
    static final int CHAINS = 12;
    /** FLOPs of one thread's share of fma: CHAINS x 2 x lanes x iterations, the same whatever the vector width. */
    static final long FMA_FLOPS = (long) CHAINS * 2 << 26;
    /** Bytes of one thread's share of read. */
    static final long READ_BYTES = 256L << 20;
    private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    private static final int ITERATIONS = (1 << 26) / SPECIES.length();

    @Param({"1", "2"})
    public int threads;

    private ExecutorService pool;
    private float[][] data;

    @Setup(Level.Trial)
    public void setUp() {
        pool = Executors.newFixedThreadPool(threads);
        data = new float[threads][(int) (READ_BYTES / Float.BYTES)];
        for (float[] d : data) {
            java.util.Arrays.fill(d, 1e-3f);
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        pool.shutdownNow();
    }

    @Benchmark
    public float fma() throws InterruptedException, ExecutionException {
        return onEveryThread(share -> fmaChains(1e-7f + share));
    }

    @Benchmark
    public float read() throws InterruptedException, ExecutionException {
        return onEveryThread(share -> sum(data[share]));
    }

    private interface Share {
        float run(int share);
    }

    private float onEveryThread(Share work) throws InterruptedException, ExecutionException {
        List<Callable<Float>> shares = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            int share = t;
            shares.add(() -> work.run(share));
        }
        float total = 0;
        for (Future<Float> f : pool.invokeAll(shares)) {
            total += f.get();
        }
        return total;
    }

    // CHAINS independent acc = acc * a + b chains, ITERATIONS long; the result keeps the JIT from dropping them
    private static float fmaChains(float seed) {
        FloatVector a = FloatVector.broadcast(SPECIES, 1f - seed);
        FloatVector b = FloatVector.broadcast(SPECIES, seed);
        FloatVector c0 = b, c1 = b, c2 = b, c3 = b, c4 = b, c5 = b, c6 = b, c7 = b, c8 = b, c9 = b, c10 = b, c11 = b;
        for (int i = 0; i < ITERATIONS; i++) {
            c0 = c0.fma(a, b);
            c1 = c1.fma(a, b);
            c2 = c2.fma(a, b);
            c3 = c3.fma(a, b);
            c4 = c4.fma(a, b);
            c5 = c5.fma(a, b);
            c6 = c6.fma(a, b);
            c7 = c7.fma(a, b);
            c8 = c8.fma(a, b);
            c9 = c9.fma(a, b);
            c10 = c10.fma(a, b);
            c11 = c11.fma(a, b);
        }
        return c0.add(c1).add(c2).add(c3).add(c4).add(c5).add(c6).add(c7).add(c8).add(c9).add(c10).add(c11).reduceLanes(
                jdk.incubator.vector.VectorOperators.ADD);
    }

    // sum of x[n] with four vector accumulators (independent loads in flight)
    private static float sum(float[] x) {
        FloatVector s0 = FloatVector.zero(SPECIES);
        FloatVector s1 = s0;
        FloatVector s2 = s0;
        FloatVector s3 = s0;
        int step = SPECIES.length();
        int i = 0;
        for (; i + 4 * step <= x.length; i += 4 * step) {
            s0 = s0.add(FloatVector.fromArray(SPECIES, x, i));
            s1 = s1.add(FloatVector.fromArray(SPECIES, x, i + step));
            s2 = s2.add(FloatVector.fromArray(SPECIES, x, i + 2 * step));
            s3 = s3.add(FloatVector.fromArray(SPECIES, x, i + 3 * step));
        }
        float total = s0.add(s1).add(s2).add(s3).reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
        for (; i < x.length; i++) {
            total += x[i];
        }
        return total;
    }
}
