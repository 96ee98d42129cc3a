package dev.mod.cpu;

import dev.mod.model.DType;
import dev.mod.model.Rope;
import dev.mod.model.RouterWeighting;
import dev.mod.model.Tensor;
import dev.mod.plan.Kernels;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.Map;

/**
 * The fast CPU backend: Java Vector API kernels (the species the CPU prefers, so AVX2, AVX-512 and NEON
 * all work) on one fixed pool of threads. Weights are prepared on first use and kept: matrices packed
 * into GEMM panels (BF16 and F16 matrices as they are stored, in 16 bits, widened in the GEMM), vectors as
 * float arrays, RoPE angles tabulated. After the first forward pass of a
 * plan, a pass allocates nothing. Results do not depend on the number of threads.
 */
public final class CpuKernels implements Kernels, AutoCloseable {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final WorkerPool pool;
    private final Gemm gemm = new Gemm();
    private final RowKernels rows;
    private final CausalAttention attention;
    private final CacheAttention cacheAttention;
    private final TopKSelector topK;
    private final Map<Tensor, PackedMatrix> packed = new IdentityHashMap<>();
    private final Map<Tensor, PackedHalfMatrix> packedHalf = new IdentityHashMap<>();
    /** One product each of matmulGroups' groups (each keeps its own per-worker scratch). */
    private Gemm[] groupGemms = new Gemm[0];
    private final Map<Tensor, float[]> vectors = new IdentityHashMap<>();
    /** Matrices packed stacked (matmuls), keyed by the first of them; and the stacked products' output. */
    private final Map<Tensor, PackedMatrix> stacked = new IdentityHashMap<>();
    private final Map<Tensor, PackedHalfMatrix> stackedHalf = new IdentityHashMap<>();
    private float[] stackedOut = new float[0];
    private RopeTable rope = new RopeTable(0, 0, 0, new float[0], new float[0]);

    /** cos/sin[pos, dh / 2] of angle pos * theta^(-2j / dh), for positions below `positions`. */
    private record RopeTable(double theta, int dh, int positions, float[] cos, float[] sin) {
    }

    public CpuKernels(int threads) {
        pool = new WorkerPool(threads);
        rows = new RowKernels(pool);
        attention = new CausalAttention(threads);
        cacheAttention = new CacheAttention(threads);
        topK = new TopKSelector(threads);
    }

    /** One thread per available processor. */
    public CpuKernels() {
        this(Runtime.getRuntime().availableProcessors());
    }

    @Override
    public String name() {
        return "cpu";
    }

    // x[rows, d] = emb[tokens[r], :]
    @Override
    public void embed(float[] x, int[] tokens, Tensor emb, int rowCount, int d) {
        for (int r = 0; r < rowCount; r++) {
            long base = (long) tokens[r] * d;
            if (emb.dtype() == DType.F32) {
                MemorySegment.copy(emb.data(), F32, base * Float.BYTES, x, r * d, d);
            } else {
                for (int i = 0; i < d; i++) {
                    x[r * d + i] = emb.get(base + i);
                }
            }
        }
    }

    // out[rows, d] = x[rows, d] / sqrt(mean(x[r]^2) + eps) * w[d]
    @Override
    public void rmsnorm(float[] out, float[] x, Tensor w, int rowCount, int d, double eps) {
        rows.rmsnorm(out, x, vector(w), rowCount, d, eps);
    }

    // out[rows, outDim] = x[rows, in] . w[outDim, in]^T
    @Override
    public void matmul(float[] out, float[] x, Tensor w, int rowCount, int in, int outDim) {
        if (w.dtype() == DType.BF16 || w.dtype() == DType.F16) {
            gemm.multiply(pool, out, x, packedHalf.computeIfAbsent(w, t -> PackedHalfMatrix.pack(t, Gemm.NR)), rowCount);
        } else {
            gemm.multiply(pool, out, x, packed(w), rowCount);
        }
    }

    // outs[i][rows, outDims[i]] = x[rows, in] . ws[i]^T, as one product over the matrices stacked [sum outDims, in]:
    // a decode step's products are small, and each is a hand-off to the workers and back (8 layers x 5 products)
    @Override
    public void matmuls(float[][] outs, float[] x, Tensor[] ws, int rowCount, int in, int[] outDims) {
        DType type = ws[0].dtype();
        int total = 0;
        for (int i = 0; i < ws.length; i++) {
            total += outDims[i];
            if (ws[i].dtype() != type) {
                Kernels.super.matmuls(outs, x, ws, rowCount, in, outDims);
                return;
            }
        }
        if (stackedOut.length < rowCount * total) {
            stackedOut = new float[rowCount * total];
        }
        if (type == DType.BF16 || type == DType.F16) {
            gemm.multiply(pool, stackedOut, x, stackedHalf.computeIfAbsent(ws[0], t -> PackedHalfMatrix.pack(stack(ws), Gemm.NR)), rowCount);
        } else {
            gemm.multiply(pool, stackedOut, x, stacked.computeIfAbsent(ws[0], t -> PackedMatrix.pack(stack(ws), Gemm.NR)), rowCount);
        }
        for (int r = 0; r < rowCount; r++) {
            for (int i = 0, offset = 0; i < ws.length; offset += outDims[i], i++) {
                System.arraycopy(stackedOut, r * total + offset, outs[i], r * outDims[i], outDims[i]);
            }
        }
    }

    // outs[i][rows[i], out] = xs[i][rows[i], in] . ws[i]^T for i < count, in one hand-off to the workers: a mixture's
    // experts are small products (a decode step's a row or none each), and each alone would be a hand-off and back
    @Override
    public void matmulGroups(float[][] outs, float[][] xs, Tensor[] ws, int[] rows, int count) {
        if (groupGemms.length < count) {
            groupGemms = new Gemm[count];
            Arrays.setAll(groupGemms, i -> new Gemm());
        }
        Object[] panels = new Object[count];
        for (int i = 0; i < count; i++) {
            Tensor w = ws[i];
            panels[i] = w.dtype() == DType.BF16 || w.dtype() == DType.F16
                    ? packedHalf.computeIfAbsent(w, t -> PackedHalfMatrix.pack(t, Gemm.NR)) : packed(w);
        }
        Gemm.multiplyAll(pool, groupGemms, outs, xs, panels, rows, count);
    }

    // [sum of rows, in]: the matrices one after another, in their stored type (packed, then dropped)
    private static Tensor stack(Tensor[] ws) {
        long rowsTotal = 0;
        for (Tensor w : ws) {
            rowsTotal += w.dim(0);
        }
        MemorySegment data = MemorySegment.ofArray(new byte[Math.toIntExact(rowsTotal * ws[0].dim(1) * ws[0].dtype().bytes())]);
        long at = 0;
        for (Tensor w : ws) {
            MemorySegment.copy(w.data(), 0, data, at, w.data().byteSize());
            at += w.data().byteSize();
        }
        return new Tensor(ws[0].name() + "+" + (ws.length - 1), ws[0].dtype(), new long[] {rowsTotal, ws[0].dim(1)}, data);
    }

    // x[rows, heads * dh] in place: pair (2j, 2j+1) of each head rotated by angle pos[r] * theta^(-2j / dh)
    @Override
    public void rope(float[] x, int[] pos, int rowCount, int heads, int dh, double theta) {
        int maxPosition = 0;
        for (int r = 0; r < rowCount; r++) {
            maxPosition = Math.max(maxPosition, pos[r]);
        }
        RopeTable table = ropeTable(theta, dh, maxPosition + 1);
        rows.rope(x, pos, table.cos(), table.sin(), rowCount, heads, dh);
    }

    // out[B, n, nHeads * dh] = softmax(q k^T / sqrt(dh), causal) v; positions ascending within each sequence
    @Override
    public void attention(float[] out, float[] q, float[] k, float[] v, int[] pos,
                          int batch, int n, int nHeads, int nKvHeads, int dh) {
        attention.attend(pool, out, q, k, v, batch, n, nHeads, nKvHeads, dh);
    }

    // out[row0 + i, H * dh] = softmax over cache rows j <= start + i of q[row0 + i] . k[j] / sqrt(dh), times v[j], i < n
    @Override
    public void cachedAttention(float[] out, float[] q, int row0, int n, float[] kT, int stride, float[] v, int start,
                                int nHeads, int nKvHeads, int dh) {
        cacheAttention.attend(pool, out, q, row0, n, kT, stride, v, start, nHeads, nKvHeads, dh);
    }

    // the same against a BF16 cache: kT [Hkv * dh / 2, stride], v [Hkv, (stride + 1) / 2, dh] ints (see KvCache)
    @Override
    public void cachedAttentionBf16(float[] out, float[] q, int row0, int n, int[] kT, int stride, int[] v, int start,
                                    int nHeads, int nKvHeads, int dh) {
        cacheAttention.attendBf16(pool, out, q, row0, n, kT, stride, v, start, nHeads, nKvHeads, dh);
    }

    // out[len] = silu(gate[len]) * up[len]
    @Override
    public void swiglu(float[] out, float[] gate, float[] up, int len) {
        rows.swiglu(out, gate, up, len);
    }

    // out[len] = a[len] + b[len]
    @Override
    public void add(float[] out, float[] a, float[] b, int len) {
        rows.add(out, a, b, len);
    }

    // r[rows] = x[rows, d] . w[d]
    @Override
    public void routerLogits(float[] r, float[] x, Tensor w, int rowCount, int d) {
        rows.routerLogits(r, x, vector(w), rowCount, d);
    }

    // p[rows] = softmax over the E experts of logits[rows, E], its column e
    @Override
    public void expertProbabilities(float[] p, float[] logits, int expert, int rowCount, int experts) {
        TrainKernels.expertProbabilities(p, logits, expert, rowCount, experts);
    }

    // sel[B, k] = positions of the k largest r[b, :] (ties: lower position first), ascending
    @Override
    public void topK(int[] sel, float[] r, int batch, int seqLen, int k) {
        topK.select(pool, sel, r, batch, seqLen, k);
    }

    // xs[B, k, d] = x[b, sel[b, j], :]
    @Override
    public void gather(float[] xs, float[] x, int[] sel, int batch, int seqLen, int k, int d) {
        rows.gather(xs, x, sel, batch, seqLen, k, d);
    }

    // x[b, sel[b, j], :] += g(r[b, sel[b, j]]) * f[b, j, :]
    @Override
    public void scatter(float[] x, float[] f, int[] sel, float[] r, RouterWeighting g,
                        int batch, int seqLen, int k, int d) {
        rows.scatter(x, f, sel, r, g, batch, seqLen, k, d);
    }

    private PackedMatrix packed(Tensor w) {
        PackedMatrix p = packed.get(w);
        if (p == null) {
            p = PackedMatrix.pack(w, Gemm.NR);
            packed.put(w, p);
        }
        return p;
    }

    private float[] vector(Tensor w) {
        float[] v = vectors.get(w);
        if (v == null) {
            v = w.toFloatArray();
            vectors.put(w, v);
        }
        return v;
    }

    private RopeTable ropeTable(double theta, int dh, int positions) {
        RopeTable t = rope;
        if (t.theta() == theta && t.dh() == dh && t.positions() >= positions) {
            return t;
        }
        // A decode step asks for one position more than the last: the table at least doubles, keeping the rows it
        // has, so that a generation of n tokens computes O(n) angles in all, not O(n) per step.
        boolean extend = t.theta() == theta && t.dh() == dh;
        int size = extend ? Math.max(positions, 2 * t.positions()) : positions;
        int half = dh / 2;
        int from = extend ? t.positions() : 0;
        float[] cos = Arrays.copyOf(extend ? t.cos() : new float[0], size * half);
        float[] sin = Arrays.copyOf(extend ? t.sin() : new float[0], size * half);
        Rope.fill(cos, sin, theta, dh, from, size);
        rope = new RopeTable(theta, dh, size, cos, sin);
        return rope;
    }

    @Override
    public void close() {
        pool.close();
    }
}
