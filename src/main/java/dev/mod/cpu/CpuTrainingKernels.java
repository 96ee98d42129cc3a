package dev.mod.cpu;

import dev.mod.model.RouterWeighting;
import dev.mod.model.Rng;
import dev.mod.train.AdamW;
import dev.mod.train.Parameters;
import dev.mod.train.TrainingKernels;

import java.util.Arrays;

/**
 * The cpu backend's training kernels, all on one pool of threads: the packed GEMM's products and their gradients
 * ({@link TrainMatmul}), causal attention and its twin ({@link CausalAttention}, {@link TrainAttention}), the row
 * kernels and their twins ({@link RowKernels}, {@link TrainKernels}), top-k, and AdamW ({@link AdamWUpdate}).
 */
public final class CpuTrainingKernels implements TrainingKernels {
    private final TrainMatmul mm;
    private final CausalAttention attention;
    private final TrainAttention attentionBackward;
    private final RowKernels rows;
    private final TopKSelector topK;
    private final AdamWUpdate adamW;
    private final int threads;

    public CpuTrainingKernels(int threads) {
        this.threads = threads;
        mm = new TrainMatmul(threads);
        attention = new CausalAttention(threads);
        attentionBackward = new TrainAttention(mm.pool(), threads);
        rows = new RowKernels(mm.pool());
        topK = new TopKSelector(threads);
        adamW = new AdamWUpdate(mm.pool());
    }

    @Override
    public String device() {
        return "cpu, " + threads + (threads == 1 ? " thread" : " threads");
    }

    @Override
    public Matrix matrix(int out, int in) {
        return new TrainMatmul.Weight(out, in);
    }

    @Override
    public void load(Matrix w, float[] master) {
        ((TrainMatmul.Weight) w).refresh(mm, master);
    }

    @Override
    public void matmul(float[] out, float[] x, Matrix w, int n) {
        mm.forward(out, x, (TrainMatmul.Weight) w, n);
    }

    @Override
    public void matmulBackwardInput(float[] dx, float[] dout, Matrix w, int n) {
        mm.backwardInput(dx, dout, (TrainMatmul.Weight) w, n);
    }

    @Override
    public void matmulBackwardInputAdd(float[] dx, float[] dout, Matrix w, int n) {
        mm.backwardInputAdd(dx, dout, (TrainMatmul.Weight) w, n);
    }

    @Override
    public void matmulBackwardWeight(float[] dw, float[] dout, float[] x, int n, int out, int in) {
        mm.backwardWeight(dw, dout, x, n, out, in);
    }

    @Override
    public Activations activations(float[] x, int n, int in) {
        return mm.packActivations(x, n, in);
    }

    @Override
    public void matmulBackwardWeight(float[] dw, float[] dout, Activations x, int n, int out) {
        mm.backwardWeight(dw, dout, (PackedMatrix) x, n, out);
    }

    @Override
    public void embed(float[] x, int[] tokens, float[] emb, int n, int d) {
        TrainKernels.embed(x, tokens, emb, n, d);
    }

    @Override
    public void embedBackward(float[] demb, float[] dx, int[] tokens, int n, int d) {
        TrainKernels.embedBackward(demb, dx, tokens, n, d);
    }

    @Override
    public void rmsnorm(float[] out, float[] x, float[] w, int n, int d, double eps) {
        rows.rmsnorm(out, x, w, n, d, eps);
    }

    @Override
    public void rmsnormBackward(float[] dx, float[] dw, float[] dout, float[] x, float[] w, int n, int d, double eps) {
        rows.rmsnormBackward(dx, dout, x, w, n, d, eps);
        TrainKernels.rmsnormWeightGrad(dw, dout, x, n, d, eps);
    }

    @Override
    public void rope(float[] x, int[] positions, float[] cos, float[] sin, int n, int heads, int dh) {
        rows.rope(x, positions, cos, sin, n, heads, dh);
    }

    @Override
    public void add(float[] out, float[] a, float[] b, int n) {
        rows.add(out, a, b, n);
    }

    @Override
    public void attention(float[] out, float[] lse, float[] q, float[] k, float[] v, int batch, int seqLen, int heads,
                          int kvHeads, int dh) {
        attention.attend(mm.pool(), out, lse, q, k, v, batch, seqLen, heads, kvHeads, dh);
    }

    @Override
    public void attentionBackward(float[] dq, float[] dk, float[] dv, float[] dout, float[] out, float[] lse, float[] q,
                                  float[] k, float[] v, int batch, int seqLen, int heads, int kvHeads, int dh) {
        attentionBackward.backward(dq, dk, dv, dout, out, lse, q, k, v, batch, seqLen, heads, kvHeads, dh);
    }

    @Override
    public void zero(float[] a, int n) {
        Arrays.fill(a, 0, n, 0f);
    }

    @Override
    public void copy(float[] dst, float[] src, int n) {
        System.arraycopy(src, 0, dst, 0, n);
    }

    @Override
    public void swiglu(float[] s, float[] g, float[] u, int n) {
        rows.swiglu(s, g, u, n);
    }

    @Override
    public void swigluBackward(float[] dg, float[] du, float[] ds, float[] g, float[] u, int n) {
        rows.swigluBackward(dg, du, ds, g, u, n);
    }

    @Override
    public void routerLogits(float[] r, float[] x, float[] w, int n, int d) {
        rows.routerLogits(r, x, w, n, d);
    }

    @Override
    public void routerLogitsBackward(float[] dx, float[] dw, float[] dr, float[] x, float[] w, int n, int d) {
        TrainKernels.routerLogitsBackward(dx, dw, dr, x, w, n, d);
    }

    @Override
    public void select(int[] sel, float[] scores, int batch, int seqLen, int capacity) {
        topK.select(mm.pool(), sel, scores, batch, seqLen, capacity);
    }

    @Override
    public void topKTargets(int[] target, int[] sel, int batch, int seqLen, int capacity) {
        Arrays.fill(target, 0, batch * seqLen, 0);
        for (int b = 0; b < batch; b++) {
            for (int j = 0; j < capacity; j++) {
                target[b * seqLen + sel[b * capacity + j]] = 1;
            }
        }
    }

    @Override
    public void uniformScores(float[] noise, long draw, int layer, int n) {
        for (int t = 0; t < n; t++) {
            noise[t] = Rng.uniform(draw, layer, t);
        }
    }

    @Override
    public void gaussianScores(float[] noise, long draw, int layer, int n) {
        for (int t = 0; t < n; t++) {
            noise[t] = Rng.gaussian(draw, layer, t);
        }
    }

    @Override
    public void expertProbabilities(float[] p, float[] logits, int expert, int n, int experts) {
        TrainKernels.expertProbabilities(p, logits, expert, n, experts);
    }

    @Override
    public void expertProbabilitiesBackward(float[] dlogits, float[] dp, float[] logits, int expert, int n, int experts) {
        TrainKernels.expertProbabilitiesBackward(dlogits, dp, logits, expert, n, experts);
    }

    @Override
    public void gather(float[] xs, float[] x, int[] sel, int batch, int seqLen, int capacity, int d) {
        rows.gather(xs, x, sel, batch, seqLen, capacity, d);
    }

    @Override
    public void gatherBackward(float[] dx, float[] dxs, int[] sel, int batch, int seqLen, int capacity, int d) {
        TrainKernels.gatherBackward(dx, dxs, sel, batch, seqLen, capacity, d);
    }

    @Override
    public void scatter(float[] x, float[] f, int[] sel, float[] r, RouterWeighting weighting, int batch, int seqLen,
                        int capacity, int d) {
        rows.scatter(x, f, sel, r, weighting, batch, seqLen, capacity, d);
    }

    @Override
    public void scatterBackward(float[] df, float[] dr, float[] dx, float[] f, int[] sel, float[] r, RouterWeighting weighting,
                                int batch, int seqLen, int capacity, int d) {
        TrainKernels.scatterBackward(df, dr, dx, f, sel, r, weighting, batch, seqLen, capacity, d);
    }

    @Override
    public void crossEntropy(double[] losses, int slot, float[] logits, int[] targets, int n, int vocab) {
        losses[slot] = TrainKernels.crossEntropy(logits, targets, n, vocab);
    }

    @Override
    public void crossEntropyBackward(float[] dlogits, float[] probs, int[] targets, int n, int vocab, float scale) {
        TrainKernels.crossEntropyBackward(dlogits, probs, targets, n, vocab, scale);
    }

    @Override
    public void binaryCrossEntropy(double[] losses, int slot, float[] z, int[] y, int n) {
        losses[slot] = TrainKernels.binaryCrossEntropy(null, z, y, n, 0);
    }

    @Override
    public void binaryCrossEntropyBackward(float[] dz, float[] z, int[] y, int n, float weight) {
        TrainKernels.binaryCrossEntropy(dz, z, y, n, weight);
    }

    @Override
    public void predictorLogits(float[] z, float[] hidden, float[] w2, int n, int p) {
        TrainKernels.predictorLogits(z, hidden, w2, n, p);
    }

    @Override
    public void predictorLogitsBackward(float[] dhidden, float[] dw2, float[] dz, float[] hidden, float[] w2, int n, int p) {
        TrainKernels.predictorLogitsBackward(dhidden, dw2, dz, hidden, w2, n, p);
    }

    @Override
    public double clip(Parameters grads, double maxNorm) {
        return adamW.clip(grads, maxNorm);
    }

    @Override
    public void update(AdamW optimizer, Parameters params, Parameters grads, double lr) {
        adamW.update(optimizer, params, grads, lr);
    }

    @Override
    public void close() {
        mm.close();
    }
}
