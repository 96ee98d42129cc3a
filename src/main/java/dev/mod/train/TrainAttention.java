package dev.mod.train;

import dev.mod.cpu.WorkerPool;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Causal attention for training and its backward twin. Rows are in ascending position order within each
 * sequence (0..T-1, or a routed layer's ascending selection), so row j is visible to row i when j <= i.
 * The forward pass keeps only the log-sum-exp of each row's scores; the backward pass recomputes the
 * probabilities from it (as flash attention does), so memory grows with T, not T^2. Work is split by
 * (sequence, kv head): the chunk owns the gradients of that kv head's keys and values and of its query
 * heads, so no two threads write the same gradient and results do not depend on the thread count.
 */
final class TrainAttention implements WorkerPool.Task {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();

    private final WorkerPool pool;
    private final float[][] scratch;
    /** Per worker: a vector's lanes, summed in lane order (reduceLanes' order may change between JIT tiers). */
    private final float[][] lanes;

    private boolean backward;
    private float[] out;
    private float[] lse;
    private float[] q;
    private float[] k;
    private float[] v;
    private float[] dout;
    private float[] dq;
    private float[] dk;
    private float[] dv;
    private int n;
    private int nHeads;
    private int nKvHeads;
    private int dh;

    TrainAttention(WorkerPool pool, int workers) {
        this.pool = pool;
        this.scratch = new float[workers][0];
        this.lanes = new float[workers][L];
    }

    // out[B, n, H * dh] = softmax(q k^T / sqrt(dh), causal) v; lse[B, H, n] = log sum exp of each row's scores;
    // q[B, n, H * dh], k and v [B, n, Hkv * dh]
    void forward(float[] out, float[] lse, float[] q, float[] k, float[] v, int batch, int n, int nHeads, int nKvHeads, int dh) {
        set(false, n, nHeads, nKvHeads, dh);
        this.out = out;
        this.lse = lse;
        this.q = q;
        this.k = k;
        this.v = v;
        pool.run(this, batch * nKvHeads);
    }

    // dq, dk, dv (written) from dout[B, n, H * dh] and the forward's q, k, v, out, lse
    void backward(float[] dq, float[] dk, float[] dv, float[] dout, float[] out, float[] lse, float[] q, float[] k, float[] v,
                  int batch, int n, int nHeads, int nKvHeads, int dh) {
        set(true, n, nHeads, nKvHeads, dh);
        this.dq = dq;
        this.dk = dk;
        this.dv = dv;
        this.dout = dout;
        this.out = out;
        this.lse = lse;
        this.q = q;
        this.k = k;
        this.v = v;
        pool.run(this, batch * nKvHeads);
    }

    private void set(boolean backward, int n, int nHeads, int nKvHeads, int dh) {
        this.backward = backward;
        this.n = n;
        this.nHeads = nHeads;
        this.nKvHeads = nKvHeads;
        this.dh = dh;
        for (int w = 0; w < scratch.length; w++) {
            if (scratch[w].length < n) {
                scratch[w] = new float[n];
            }
        }
    }

    @Override
    public void run(int chunk, int worker) {
        int b = chunk / nKvHeads;
        int g = chunk % nKvHeads;
        if (backward) {
            backwardChunk(b, g, lanes[worker]);
        } else {
            forwardChunk(b, g, scratch[worker], lanes[worker]);
        }
    }

    private void forwardChunk(int b, int g, float[] p, float[] lane) {
        int qDim = nHeads * dh;
        int kvDim = nKvHeads * dh;
        int group = nHeads / nKvHeads;
        float scale = (float) (1 / Math.sqrt(dh));
        for (int h = g * group; h < (g + 1) * group; h++) {
            for (int i = 0; i < n; i++) {
                int qi = (b * n + i) * qDim + h * dh;
                float max = Float.NEGATIVE_INFINITY;
                for (int j = 0; j <= i; j++) {
                    p[j] = dot(q, qi, k, (b * n + j) * kvDim + g * dh, dh, lane) * scale;
                    max = Math.max(max, p[j]);
                }
                double sum = 0;
                for (int j = 0; j <= i; j++) {
                    p[j] = (float) Math.exp(p[j] - max);
                    sum += p[j];
                }
                float inv = (float) (1 / sum);
                java.util.Arrays.fill(out, qi, qi + dh, 0f);
                for (int j = 0; j <= i; j++) {
                    axpy(p[j] * inv, v, (b * n + j) * kvDim + g * dh, out, qi, dh);
                }
                lse[(b * nHeads + h) * n + i] = (float) (max + Math.log(sum));
            }
        }
    }

    private void backwardChunk(int b, int g, float[] lane) {
        int qDim = nHeads * dh;
        int kvDim = nKvHeads * dh;
        int group = nHeads / nKvHeads;
        float scale = (float) (1 / Math.sqrt(dh));
        for (int j = 0; j < n; j++) {
            int kj = (b * n + j) * kvDim + g * dh;
            java.util.Arrays.fill(dk, kj, kj + dh, 0f);
            java.util.Arrays.fill(dv, kj, kj + dh, 0f);
        }
        for (int h = g * group; h < (g + 1) * group; h++) {
            for (int i = 0; i < n; i++) {
                int qi = (b * n + i) * qDim + h * dh;
                java.util.Arrays.fill(dq, qi, qi + dh, 0f);
                float rowLse = lse[(b * nHeads + h) * n + i];
                float delta = dot(dout, qi, out, qi, dh, lane);
                for (int j = 0; j <= i; j++) {
                    int kj = (b * n + j) * kvDim + g * dh;
                    float prob = (float) Math.exp(dot(q, qi, k, kj, dh, lane) * scale - rowLse);
                    float ds = prob * (dot(dout, qi, v, kj, dh, lane) - delta) * scale;
                    axpy(ds, k, kj, dq, qi, dh);
                    axpy(ds, q, qi, dk, kj, dh);
                    axpy(prob, dout, qi, dv, kj, dh);
                }
            }
        }
    }

    // x[xi .. xi+n) . y[yi .. yi+n): lane-wise FMA, then the lanes and the tail added in order
    private static float dot(float[] x, int xi, float[] y, int yi, int n, float[] lane) {
        int e = 0;
        float sum = 0;
        if (n >= L) {
            FloatVector acc = FloatVector.zero(S);
            for (; e + L <= n; e += L) {
                acc = FloatVector.fromArray(S, x, xi + e).fma(FloatVector.fromArray(S, y, yi + e), acc);
            }
            acc.intoArray(lane, 0);
            for (float l : lane) {
                sum += l;
            }
        }
        for (; e < n; e++) {
            sum = Math.fma(x[xi + e], y[yi + e], sum);
        }
        return sum;
    }

    // y[yi .. yi+n) += a * x[xi .. xi+n)
    private static void axpy(float a, float[] x, int xi, float[] y, int yi, int n) {
        int e = 0;
        FloatVector av = FloatVector.broadcast(S, a);
        for (; e + L <= n; e += L) {
            FloatVector.fromArray(S, x, xi + e).fma(av, FloatVector.fromArray(S, y, yi + e)).intoArray(y, yi + e);
        }
        for (; e < n; e++) {
            y[yi + e] = Math.fma(a, x[xi + e], y[yi + e]);
        }
    }
}
