package dev.mod.bench;

import dev.ludovic.netlib.blas.BLAS;
import dev.ludovic.netlib.blas.JavaBLAS;
import dev.ludovic.netlib.blas.NativeBLAS;
import dev.mod.cpu.Gemm;
import dev.mod.cpu.PackedMatrix;
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
 * out[M, N] = x[M, K] . W[N, K]^T: the project's GEMM against netlib's JNIBLAS (native OpenBLAS) and its
 * VectorBLAS, same shapes, same threads, same run. Shapes are "MxKxN"; FLOPs per op are 2 M K N.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class GemmBenchmark {
    @Param({"1024x1024x4096", "2048x512x1536", "256x512x1536", "2048x1376x512", "2048x512x258"})
    public String shape;

    @Param({"1", "2"})
    public int threads;

    private int m;
    private int k;
    private int n;
    private float[] x;
    private float[] w;
    private float[] out;
    private PackedMatrix packed;
    private WorkerPool pool;
    private final Gemm gemm = new Gemm();
    private BLAS nativeBlas;
    private BLAS vectorBlas;

    @Setup(Level.Trial)
    public void setUp() {
        String[] dims = shape.split("x");
        m = Integer.parseInt(dims[0]);
        k = Integer.parseInt(dims[1]);
        n = Integer.parseInt(dims[2]);
        SplittableRandom random = new SplittableRandom(1);
        x = new float[m * k];
        w = new float[n * k];
        out = new float[m * n];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) random.nextGaussian();
        }
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) random.nextGaussian();
        }
        packed = PackedMatrix.pack(w, n, k, Gemm.NR);
        pool = new WorkerPool(threads);
        nativeBlas = NativeBLAS.getInstance();
        vectorBlas = JavaBLAS.getInstance();
        OpenBlasThreads.set(threads);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        pool.close();
    }

    @Benchmark
    public float[] mod() {
        gemm.multiply(pool, out, x, packed, m);
        return out;
    }

    /** Row-major out = x W^T is column-major out^T = W x^T: sgemm("T", "N", N, M, K, ...). */
    @Benchmark
    public float[] openblasJni() {
        nativeBlas.sgemm("T", "N", n, m, k, 1f, w, k, x, k, 0f, out, n);
        return out;
    }

    /** netlib's VectorBLAS runs on one thread whatever the threads parameter says. */
    @Benchmark
    public float[] vectorBlas() {
        vectorBlas.sgemm("T", "N", n, m, k, 1f, w, k, x, k, 0f, out, n);
        return out;
    }
}
