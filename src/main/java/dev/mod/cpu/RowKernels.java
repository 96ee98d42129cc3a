package dev.mod.cpu;

import dev.mod.model.RouterWeighting;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The row-wise and element-wise kernels (RMSNorm, RoPE, SwiGLU, add, router logits, gather, scatter), each a
 * plain vector loop over one chunk of rows or elements, and the backward twins training needs (RMSNorm,
 * SwiGLU; RoPE's backward is RoPE with the sines negated). One object per backend holds the arguments of
 * the call in progress so that dispatching to the pool allocates nothing.
 */
public final class RowKernels implements WorkerPool.Task {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final int ROWS_PER_CHUNK = 16;
    private static final int ELEMENTS_PER_CHUNK = 1 << 14;

    private enum Op { RMSNORM, RMSNORM_BACKWARD, ROPE, SWIGLU, SWIGLU_BACKWARD, ADD, ROUTER, SCATTER }

    private Op op;
    private float[] out;
    private float[] a;
    private float[] b;
    private float[] c;
    private float[] d;
    private float[] w;
    private int[] index;
    private int rows;
    private int width;
    private int len;
    private int heads;
    private int headDim;
    private double eps;
    private float[] cos;
    private float[] sin;
    private RouterWeighting weighting;
    private int seqLen;
    private int k;

    private final WorkerPool pool;
    /** exp(-gate) of one chunk of SwiGLU; one per thread. */
    private final ThreadLocal<float[]> scratch = ThreadLocal.withInitial(() -> new float[ELEMENTS_PER_CHUNK]);

    public RowKernels(WorkerPool pool) {
        this.pool = pool;
    }

    private void runRows(Op kind, int rowCount) {
        op = kind;
        rows = rowCount;
        pool.run(this, (rowCount + ROWS_PER_CHUNK - 1) / ROWS_PER_CHUNK);
        out = a = b = c = w = cos = sin = null;
        index = null;
    }

    private void runElements(Op kind, int length) {
        op = kind;
        len = length;
        pool.run(this, (length + ELEMENTS_PER_CHUNK - 1) / ELEMENTS_PER_CHUNK);
        out = a = b = c = d = null;
    }

    // out[rows, d] = x / sqrt(mean(x^2) + eps) * w
    public void rmsnorm(float[] out, float[] x, float[] weight, int rows, int d, double eps) {
        this.out = out;
        this.a = x;
        this.w = weight;
        this.width = d;
        this.eps = eps;
        runRows(Op.RMSNORM, rows);
    }

    // x[rows, heads * dh] in place: pair (2j, 2j+1) rotated by the angle whose cos/sin[pos[r], j] are tabulated
    public void rope(float[] x, int[] pos, float[] cos, float[] sin, int rows, int heads, int dh) {
        this.a = x;
        this.index = pos;
        this.cos = cos;
        this.sin = sin;
        this.heads = heads;
        this.headDim = dh;
        runRows(Op.ROPE, rows);
    }

    // out[len] = silu(gate) * up
    public void swiglu(float[] out, float[] gate, float[] up, int len) {
        this.out = out;
        this.a = gate;
        this.b = up;
        runElements(Op.SWIGLU, len);
    }

    // out[len] = x + y
    public void add(float[] out, float[] x, float[] y, int len) {
        this.out = out;
        this.a = x;
        this.b = y;
        runElements(Op.ADD, len);
    }

    // dx[rows, d] += rstd * w * dout - x * rstd^3 / d * (dout . (w * x)), rstd = 1 / sqrt(mean(x^2) + eps) of each row
    public void rmsnormBackward(float[] dx, float[] dout, float[] x, float[] weight, int rows, int d, double eps) {
        this.out = dx;
        this.a = x;
        this.b = dout;
        this.w = weight;
        this.width = d;
        this.eps = eps;
        runRows(Op.RMSNORM_BACKWARD, rows);
    }

    // dgate[len] = dout * up * silu'(gate), dup[len] = dout * silu(gate) (written)
    public void swigluBackward(float[] dgate, float[] dup, float[] dout, float[] gate, float[] up, int len) {
        this.out = dgate;
        this.c = dup;
        this.d = dout;
        this.a = gate;
        this.b = up;
        runElements(Op.SWIGLU_BACKWARD, len);
    }

    // r[rows] = x[rows, d] . w[d]
    public void routerLogits(float[] r, float[] x, float[] weight, int rows, int d) {
        this.out = r;
        this.a = x;
        this.w = weight;
        this.width = d;
        runRows(Op.ROUTER, rows);
    }

    // xs[B, k, d] = x[b, sel[b, j], :]: row copies, no arithmetic, so no threads
    public void gather(float[] xs, float[] x, int[] sel, int batch, int seqLen, int k, int d) {
        for (int b = 0; b < batch; b++) {
            for (int j = 0; j < k; j++) {
                System.arraycopy(x, (b * seqLen + sel[b * k + j]) * d, xs, (b * k + j) * d, d);
            }
        }
    }

    // x[b, sel[b, j], :] += g(r[b, sel[b, j]]) * f[b, j, :]
    public void scatter(float[] x, float[] f, int[] sel, float[] r, RouterWeighting g, int batch, int seqLen, int k, int d) {
        this.out = x;
        this.a = f;
        this.b = r;
        this.index = sel;
        this.weighting = g;
        this.seqLen = seqLen;
        this.k = k;
        this.width = d;
        runRows(Op.SCATTER, batch * k);
    }

    @Override
    public void run(int chunk, int worker) {
        if (op == Op.SWIGLU || op == Op.SWIGLU_BACKWARD || op == Op.ADD) {
            int start = chunk * ELEMENTS_PER_CHUNK;
            int end = Math.min(len, start + ELEMENTS_PER_CHUNK);
            switch (op) {
                case SWIGLU -> swigluRange(start, end);
                case SWIGLU_BACKWARD -> swigluBackwardRange(start, end);
                default -> addRange(start, end);
            }
            return;
        }
        int end = Math.min(rows, (chunk + 1) * ROWS_PER_CHUNK);
        for (int r = chunk * ROWS_PER_CHUNK; r < end; r++) {
            switch (op) {
                case RMSNORM -> rmsnormRow(r);
                case RMSNORM_BACKWARD -> rmsnormBackwardRow(r);
                case ROPE -> ropeRow(r);
                case ROUTER -> out[r] = VectorMath.dot(a, r * width, w, 0, width);
                case SCATTER -> scatterRow(r);
                default -> throw new IllegalStateException(op.name());
            }
        }
    }

    // out[r, :] = a[r, :] / sqrt(mean(a[r]^2) + eps) * w
    private void rmsnormRow(int r) {
        int base = r * width;
        float sumSquares = VectorMath.dot(a, base, a, base, width);
        float scale = (float) (1.0 / Math.sqrt(sumSquares / width + eps));
        int i = 0;
        for (; i + L <= width; i += L) {
            FloatVector.fromArray(S, a, base + i).mul(scale).mul(FloatVector.fromArray(S, w, i)).intoArray(out, base + i);
        }
        for (; i < width; i++) {
            out[base + i] = a[base + i] * scale * w[i];
        }
    }

    // out[r, :] += rstd * w * b[r] - a[r] * rstd^3 / d * (b[r] . (w * a[r])): RMSNorm's input gradient
    private void rmsnormBackwardRow(int r) {
        int base = r * width;
        float sumSquares = VectorMath.dot(a, base, a, base, width);
        float rstd = (float) (1.0 / Math.sqrt(sumSquares / width + eps));
        float[] wx = scratch.get();
        int i = 0;
        for (; i + L <= width; i += L) {
            FloatVector.fromArray(S, b, base + i).mul(FloatVector.fromArray(S, w, i)).intoArray(wx, i);
        }
        for (; i < width; i++) {
            wx[i] = b[base + i] * w[i];
        }
        float coefficient = VectorMath.dot(wx, 0, a, base, width) * rstd * rstd * rstd / width;
        i = 0;
        for (; i + L <= width; i += L) {
            FloatVector.fromArray(S, wx, i).mul(rstd)
                    .sub(FloatVector.fromArray(S, a, base + i).mul(coefficient))
                    .add(FloatVector.fromArray(S, out, base + i)).intoArray(out, base + i);
        }
        for (; i < width; i++) {
            out[base + i] += wx[i] * rstd - a[base + i] * coefficient;
        }
    }

    // a[r, heads * dh] rotated in place; cos/sin[pos, dh / 2] tabulated
    private void ropeRow(int r) {
        int half = headDim / 2;
        int table = index[r] * half;
        for (int h = 0; h < heads; h++) {
            int base = (r * heads + h) * headDim;
            for (int j = 0; j < half; j++) {
                float c = cos[table + j];
                float s = sin[table + j];
                float x0 = a[base + 2 * j];
                float x1 = a[base + 2 * j + 1];
                a[base + 2 * j] = x0 * c - x1 * s;
                a[base + 2 * j + 1] = x0 * s + x1 * c;
            }
        }
    }

    // out[i] = silu(a[i]) * b[i] = a[i] / (1 + exp(-a[i])) * b[i]; out may be a
    private void swigluRange(int start, int end) {
        float[] e = scratch.get();
        int n = end - start;
        VectorMath.exp(a, start, e, 0, n, -1f, 0f);
        int i = 0;
        for (; i + L <= n; i += L) {
            FloatVector g = FloatVector.fromArray(S, a, start + i);
            FloatVector sig = FloatVector.fromArray(S, e, i).add(1f);
            g.div(sig).mul(FloatVector.fromArray(S, b, start + i)).intoArray(out, start + i);
        }
        for (; i < n; i++) {
            out[start + i] = a[start + i] / (e[i] + 1f) * b[start + i];
        }
    }

    // out[i] = d[i] * b[i] * sig * (1 + a[i] * (1 - sig)), c[i] = d[i] * a[i] * sig, sig = sigmoid(a[i])
    private void swigluBackwardRange(int start, int end) {
        float[] e = scratch.get();
        int n = end - start;
        VectorMath.exp(a, start, e, 0, n, -1f, 0f);
        int i = 0;
        for (; i + L <= n; i += L) {
            FloatVector g = FloatVector.fromArray(S, a, start + i);
            FloatVector sig = FloatVector.broadcast(S, 1f).div(FloatVector.fromArray(S, e, i).add(1f));
            FloatVector dy = FloatVector.fromArray(S, d, start + i);
            FloatVector silu = g.mul(sig);
            dy.mul(silu).intoArray(c, start + i);
            FloatVector slope = sig.mul(g.mul(sig.neg().add(1f)).add(1f));
            dy.mul(FloatVector.fromArray(S, b, start + i)).mul(slope).intoArray(out, start + i);
        }
        for (; i < n; i++) {
            float g = a[start + i];
            float sig = 1f / (1f + e[i]);
            c[start + i] = d[start + i] * g * sig;
            out[start + i] = d[start + i] * b[start + i] * sig * (1 + g * (1 - sig));
        }
    }

    // out[i] = a[i] + b[i]
    private void addRange(int start, int end) {
        int i = start;
        for (; i + L <= end; i += L) {
            FloatVector.fromArray(S, a, i).add(FloatVector.fromArray(S, b, i)).intoArray(out, i);
        }
        for (; i < end; i++) {
            out[i] = a[i] + b[i];
        }
    }

    // out[b, sel[b, j], :] += g(r) * a[b, j, :], for row = b * k + j
    private void scatterRow(int row) {
        int seq = row / k;
        int target = (seq * seqLen + index[row]) * width;
        float gain = (float) weighting.apply(b[seq * seqLen + index[row]]);
        int src = row * width;
        int i = 0;
        for (; i + L <= width; i += L) {
            FloatVector.fromArray(S, a, src + i).fma(FloatVector.broadcast(S, gain), FloatVector.fromArray(S, out, target + i)).intoArray(out, target + i);
        }
        for (; i < width; i++) {
            out[target + i] = Math.fma(a[src + i], gain, out[target + i]);
        }
    }
}
