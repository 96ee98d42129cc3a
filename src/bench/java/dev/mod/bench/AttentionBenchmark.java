package dev.mod.bench;

import dev.mod.cpu.CausalAttention;
import dev.mod.cpu.WorkerPool;
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
 * Causal attention of the bench model's shape (8 heads of 64, one sequence of T rows) on the cpu backend, the
 * prefill and training forward's kernel: out = softmax(q k^T / sqrt(dh), causal) v. Its useful FLOPs are
 * {@link #flops}: 2 dh per visible (query, key) pair for the scores and 2 dh for the weighted values.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector"})
public class AttentionBenchmark {
    static final int HEADS = 8;
    static final int HEAD_DIM = 64;

    @Param({"1024", "2048"})
    public int seqLen;

    @Param({"1", "2"})
    public int threads;

    private WorkerPool pool;
    private CausalAttention attention;
    private float[] q;
    private float[] k;
    private float[] v;
    private float[] out;

    /** FLOPs of one call: 4 dh per (query, key) pair with key <= query, for every head. */
    static double flops(int seqLen) {
        return 4.0 * HEAD_DIM * HEADS * seqLen * (seqLen + 1) / 2;
    }

    @Setup(Level.Trial)
    public void setUp() {
        int size = seqLen * HEADS * HEAD_DIM;
        SplittableRandom random = new SplittableRandom(3);
        q = new float[size];
        k = new float[size];
        v = new float[size];
        out = new float[size];
        for (float[] a : new float[][] {q, k, v}) {
            for (int i = 0; i < size; i++) {
                a[i] = (float) random.nextGaussian();
            }
        }
        pool = new WorkerPool(threads);
        attention = new CausalAttention(threads);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        pool.close();
    }

    @Benchmark
    public float[] causal() {
        attention.attend(pool, out, null, q, k, v, 1, seqLen, HEADS, HEADS, HEAD_DIM);
        return out;
    }
}
