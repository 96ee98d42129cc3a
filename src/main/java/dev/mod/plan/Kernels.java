package dev.mod.plan;

import dev.mod.model.RouterWeighting;
import dev.mod.model.Tensor;

/**
 * The operations a backend implements; the forward plan strings them into stages. Buffers are
 * row-major float arrays; weights are [out, in] tensors. Shapes are given above each method.
 * A routed layer works on B sequences of k selected rows, a dense layer on B sequences of T rows.
 */
public interface Kernels extends AutoCloseable {
    String name();

    /** Releases what the backend holds (threads, devices); the kernels are not used afterwards. */
    @Override
    default void close() {
    }

    // x[rows, d] = emb[tokens[r], :]
    void embed(float[] x, int[] tokens, Tensor emb, int rows, int d);

    // out[rows, d] = x[rows, d] / sqrt(mean(x[r]^2) + eps) * w[d]
    void rmsnorm(float[] out, float[] x, Tensor w, int rows, int d, double eps);

    // out[rows, outDim] = x[rows, in] . w[outDim, in]^T
    void matmul(float[] out, float[] x, Tensor w, int rows, int in, int outDim);

    // outs[i][rows, outDims[i]] = x[rows, in] . ws[i][outDims[i], in]^T: products of one input (q, k and v; gate and up),
    // which a backend may run as one product over the matrices stacked (one hand-off to its workers instead of three)
    default void matmuls(float[][] outs, float[] x, Tensor[] ws, int rows, int in, int[] outDims) {
        for (int i = 0; i < ws.length; i++) {
            matmul(outs[i], x, ws[i], rows, in, outDims[i]);
        }
    }

    // outs[i][rows[i], ws[i].out] = xs[i][rows[i], ws[i].in] . ws[i]^T for i < count: independent products (a mixture's
    // experts, each on its own rows), which a backend may run as one
    default void matmulGroups(float[][] outs, float[][] xs, Tensor[] ws, int[] rows, int count) {
        for (int i = 0; i < count; i++) {
            matmul(outs[i], xs[i], ws[i], rows[i], (int) ws[i].dim(1), (int) ws[i].dim(0));
        }
    }

    // x[rows, heads * dh] in place: pair (2j, 2j+1) of each head rotated by angle pos[r] * theta^(-2j / dh)
    void rope(float[] x, int[] pos, int rows, int heads, int dh, double theta);

    // out[B, n, nHeads * dh] = softmax(q k^T / sqrt(dh), masked to pos[j] <= pos[i] within a sequence) v;
    // q[B, n, nHeads * dh], k and v [B, n, nKvHeads * dh], pos[B, n]; query head h reads kv head h / (nHeads / nKvHeads).
    // The plan passes rows in strictly ascending position order within a sequence (0..T-1, or the ascending
    // selection), so a backend may use "j <= i" for the mask.
    void attention(float[] out, float[] q, float[] k, float[] v, int[] pos,
                   int batch, int n, int nHeads, int nKvHeads, int dh);

    // out[row0 + i, H * dh] = softmax over cache rows j <= start + i of q[row0 + i] . k[j] / sqrt(dh), times v[j], i < n;
    // q and out [*, H * dh]; one sequence's cache, whose last n rows are the queries' own: its keys transposed,
    // kT [Hkv * dh, stride] (key j is column j), and its values head by head, v [Hkv, stride, dh]
    void cachedAttention(float[] out, float[] q, int row0, int n, float[] kT, int stride, float[] v, int start,
                         int nHeads, int nKvHeads, int dh);

    // the same against a BF16 cache (see KvCache): kT [Hkv * dh / 2, stride] ints, dims e (low half) and e + 1 (high half)
    // of key j in column j; v [Hkv, (stride + 1) / 2, dh] ints, value rows 2m (low half) and 2m + 1 (high half) in
    // row m of each head. By default the visible rows are widened to floats and handed to the F32 method.
    default void cachedAttentionBf16(float[] out, float[] q, int row0, int n, int[] kT, int stride, int[] v, int start,
                                     int nHeads, int nKvHeads, int dh) {
        int rows = start + n;
        int kvDim = nKvHeads * dh;
        float[] keys = new float[kvDim * rows];
        float[] values = new float[kvDim * rows];
        int pairRows = (stride + 1) / 2;
        for (int c = 0; c < kvDim; c++) {
            int head = c / dh;
            int e = c % dh;
            for (int j = 0; j < rows; j++) {
                keys[c * rows + j] = KvCache.unpair(kT[c / 2 * stride + j], c % 2);
                values[(head * rows + j) * dh + e] = KvCache.unpair(v[(head * pairRows + j / 2) * dh + e], j % 2);
            }
        }
        cachedAttention(out, q, row0, n, keys, rows, values, start, nHeads, nKvHeads, dh);
    }

    // out[len] = silu(gate[len]) * up[len]
    void swiglu(float[] out, float[] gate, float[] up, int len);

    // out[len] = a[len] + b[len]
    void add(float[] out, float[] a, float[] b, int len);

    // a[len] = 0
    default void zero(float[] a, int len) {
        java.util.Arrays.fill(a, 0, len, 0f);
    }

    // r[rows] = x[rows, d] . w[d]
    void routerLogits(float[] r, float[] x, Tensor w, int rows, int d);

    // p[rows] = softmax over the E experts of logits[rows, E], its column e: each row's probability for expert e
    void expertProbabilities(float[] p, float[] logits, int expert, int rows, int experts);

    // sel[B, k] = positions of the k largest r[b, :] in each sequence (ties: lower position first), ascending
    void topK(int[] sel, float[] r, int batch, int seqLen, int k);

    // xs[B, k, d] = x[b, sel[b, j], :]
    void gather(float[] xs, float[] x, int[] sel, int batch, int seqLen, int k, int d);

    // x[b, sel[b, j], :] += g(r[b, sel[b, j]]) * f[b, j, :]
    void scatter(float[] x, float[] f, int[] sel, float[] r, RouterWeighting g, int batch, int seqLen, int k, int d);
}
