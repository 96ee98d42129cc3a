package dev.mod.train;

import dev.mod.model.RouterWeighting;

/**
 * The kernels a training step runs, each forward kernel beside its backward twin: what a backend implements to train
 * through {@link TrainingPlan} (the cpu backend's is {@code cpu/CpuTrainingKernels}, a device's runs them as task
 * graphs). The plan's arrays name its buffers: the cpu works on them in place; a device keeps its own copy of each,
 * and the plan says when the host's copy changes (upload) or must be current (download). R rows are B sequences of T
 * tokens; a routed layer's blocks see n = B * k of them.
 */
public interface TrainingKernels extends AutoCloseable {
    /** A weight [out, in] in the form this backend's products read, refreshed from its FP32 master copy by load(). */
    interface Matrix {
    }

    /** Activations x[n, in] prepared once for the weight gradients of several products that read them. */
    interface Activations {
    }

    Matrix matrix(int out, int in);

    /** Where the kernels run, for a run's log: "cpu, 2 threads", a device's name. */
    String device();

    /**
     * A backend that compiles the step ahead (a device's task graphs) runs `step` once here, before the first real step,
     * to learn the calls it makes in order; the cpu runs each call as it comes and ignores it.
     */
    default void trace(Runnable step) {
    }

    /** Starts a named part of the step (a layer's forward, the head's backward): a device's task graph. */
    default void section(String name) {
    }

    /** The host's copy of a changed (a batch's tokens): the backend's follows. */
    default void upload(int[] a) {
    }

    /** Makes the host's copy of a current: a result, a diagnostic, the state for a checkpoint. */
    default void download(float[] a) {
    }

    default void download(int[] a) {
    }

    default void download(double[] a) {
    }

    // w = master[out, in]
    void load(Matrix w, float[] master);

    // out[n, W.out] = x[n, W.in] . W^T
    void matmul(float[] out, float[] x, Matrix w, int n);

    // dx[n, W.in] = dout[n, W.out] . W (written)
    void matmulBackwardInput(float[] dx, float[] dout, Matrix w, int n);

    // dx[n, W.in] += dout[n, W.out] . W: for an input read by several products
    void matmulBackwardInputAdd(float[] dx, float[] dout, Matrix w, int n);

    // dW[out, in] = dout[n, out]^T . x[n, in] (written)
    void matmulBackwardWeight(float[] dw, float[] dout, float[] x, int n, int out, int in);

    // x[n, in] for matmulBackwardWeight of several products; valid until the next call for the same shape
    Activations activations(float[] x, int n, int in);

    // dW[out, in] = dout[n, out]^T . x (written), x from activations()
    void matmulBackwardWeight(float[] dw, float[] dout, Activations x, int n, int out);

    // x[R, d] = emb[tok[r], :]
    void embed(float[] x, int[] tokens, float[] emb, int rows, int d);

    // demb[tok[r], :] += dx[r, :]
    void embedBackward(float[] demb, float[] dx, int[] tokens, int rows, int d);

    // out[n, d] = x * w / sqrt(mean(x^2) + eps), row by row
    void rmsnorm(float[] out, float[] x, float[] w, int n, int d, double eps);

    // dx[n, d] += RMSNorm's input gradient, dw[d] += its weight gradient, from dout[n, d] and the forward's x
    void rmsnormBackward(float[] dx, float[] dw, float[] dout, float[] x, float[] w, int n, int d, double eps);

    // x[n, heads * dh] rotated in place by RoPE at positions[n] (cos, sin [T, dh / 2]; -sin rotates back: the backward)
    void rope(float[] x, int[] positions, float[] cos, float[] sin, int n, int heads, int dh);

    // out[n] = a[n] + b[n]
    void add(float[] out, float[] a, float[] b, int n);

    // a[n] = 0
    void zero(float[] a, int n);

    // dst[n] = src[n]
    void copy(float[] dst, float[] src, int n);

    // out[B, T, H * dh] = causal softmax(q k^T / sqrt(dh)) v per sequence of T rows, lse[B, H, T] its log-sum-exp
    void attention(float[] out, float[] lse, float[] q, float[] k, float[] v, int batch, int seqLen, int heads, int kvHeads, int dh);

    // dq, dk, dv (written) from dout[B, T, H * dh] and the forward's q, k, v, out, lse
    void attentionBackward(float[] dq, float[] dk, float[] dv, float[] dout, float[] out, float[] lse, float[] q, float[] k,
                           float[] v, int batch, int seqLen, int heads, int kvHeads, int dh);

    // s[n] = silu(g) * u
    void swiglu(float[] s, float[] g, float[] u, int n);

    // dg[n], du[n] (written) from ds[n] and the forward's g, u
    void swigluBackward(float[] dg, float[] du, float[] ds, float[] g, float[] u, int n);

    // r[R] = x[R, d] . w[d]
    void routerLogits(float[] r, float[] x, float[] w, int rows, int d);

    // dx[R, d] += dr[t] * w; dw[d] += sum_t dr[t] * x[t]
    void routerLogitsBackward(float[] dx, float[] dw, float[] dr, float[] x, float[] w, int rows, int d);

    // sel[B, k] = the k largest of scores[B, T] in each sequence, in ascending position order
    void select(int[] sel, float[] scores, int batch, int seqLen, int capacity);

    // target[B, T] = 1 where sel[B, k] picked the position, else 0
    void topKTargets(int[] target, int[] sel, int batch, int seqLen, int capacity);

    // noise[R] = uniform draws in [0, 1) for a layer at a draw (Rng.uniform): the stochastic control's scores
    void uniformScores(float[] noise, long draw, int layer, int rows);

    // noise[R] = standard normal samples for a layer at a draw (Rng.gaussian): the Gaussian control's router weights
    void gaussianScores(float[] noise, long draw, int layer, int rows);

    // p[R] = softmax over the E experts of logits[R, E], its column e: each row's probability for expert e
    void expertProbabilities(float[] p, float[] logits, int expert, int rows, int experts);

    // dlogits[R, E] += dp[r] * p_e * (delta_ej - p_j): the softmax's gradient from column e's dp[R]
    void expertProbabilitiesBackward(float[] dlogits, float[] dp, float[] logits, int expert, int rows, int experts);

    // xs[B, k, d] = x[b, sel[b, j], :]
    void gather(float[] xs, float[] x, int[] sel, int batch, int seqLen, int capacity, int d);

    // dx[b, sel[b, j], :] += dxs[b, j, :]
    void gatherBackward(float[] dx, float[] dxs, int[] sel, int batch, int seqLen, int capacity, int d);

    // x[b, sel[b, j], :] += g(r[b, sel]) * f[b, j, :]
    void scatter(float[] x, float[] f, int[] sel, float[] r, RouterWeighting weighting, int batch, int seqLen, int capacity, int d);

    // df[b, j, :] = g(r) * dx[b, sel, :] (written); dr[b, sel] += g'(r) * (f[b, j] . dx[b, sel]); dx itself passes through
    void scatterBackward(float[] df, float[] dr, float[] dx, float[] f, int[] sel, float[] r, RouterWeighting weighting, int batch,
                         int seqLen, int capacity, int d);

    // losses[slot] = mean over R of -log softmax(logits[r])[target[r]]; logits[R, V] become the probabilities
    void crossEntropy(double[] losses, int slot, float[] logits, int[] targets, int rows, int vocab);

    // dlogits[R, V] = (probs - onehot(target)) * scale (written)
    void crossEntropyBackward(float[] dlogits, float[] probs, int[] targets, int rows, int vocab, float scale);

    // losses[slot] = mean over R of BCE(sigmoid(z[r]), y[r])
    void binaryCrossEntropy(double[] losses, int slot, float[] z, int[] y, int rows);

    // dz[r] += weight * (sigmoid(z) - y) / R: the BCE's gradient
    void binaryCrossEntropyBackward(float[] dz, float[] z, int[] y, int rows, float weight);

    // z[R] = w2[P] . silu(hidden[R, P]): the causal predictor's output
    void predictorLogits(float[] z, float[] hidden, float[] w2, int rows, int p);

    // dhidden[R, P] = dz * w2 * silu'(hidden) (written), dw2[P] += sum_r dz[r] * silu(hidden[r])
    void predictorLogitsBackward(float[] dhidden, float[] dw2, float[] dz, float[] hidden, float[] w2, int rows, int p);

    /** The global L2 norm of the gradients, which are scaled down to maxNorm when above it (0: no clipping). */
    double clip(Parameters grads, double maxNorm);

    /** One AdamW step of the parameters on the gradients at learning rate lr; the optimizer's moments and step advance. */
    void update(AdamW optimizer, Parameters params, Parameters grads, double lr);

    @Override
    void close();
}
