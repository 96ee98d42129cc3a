package dev.mod.plan;

import dev.mod.model.FeedForward;
import dev.mod.model.MixtureOfExperts;
import dev.mod.model.ModelConfig;
import dev.mod.model.RouterWeighting;
import dev.mod.model.SwiGlu;
import dev.mod.model.Tensor;

/**
 * The feed-forward half of a block over n rows per sequence: f = a + feedForward(RMSNorm(h)). Each kind of
 * feed-forward (FeedForward) is one method here, chosen in apply; a mixture of experts routes with its ExpertChoice
 * (null for the other kinds).
 */
record FeedForwardStage(int layer, ModelConfig c, FeedForward<Tensor> w, Activations a, ExpertChoice choice, int batch, int n)
        implements Stage {
    @Override
    public String name() {
        return "layer" + layer + ".mlp";
    }

    @Override
    public String shapes() {
        String rows = batch + ", " + n + ", ";
        String experts = choice == null ? ""
                : " (" + c.experts().count() + " experts" + (c.experts().noOps() > 0 ? " + " + c.experts().noOps() + " no-op" : "")
                + ", " + choice.rowsPerExpert() + " rows each)";
        return "h[" + rows + c.dim() + "] -> f[" + rows + c.dim() + "]" + experts;
    }

    @Override
    public void run(Kernels k) {
        apply(k, c, w, a, choice, batch, n);
    }

    // delta[B * n, d] = attnOut + feedForward(RMSNorm(h[B * n, d]))
    static void apply(Kernels k, ModelConfig c, FeedForward<Tensor> w, Activations a, ExpertChoice choice, int batch, int n) {
        int rows = batch * n;
        k.rmsnorm(a.normed(), a.h(), w.norm(), rows, c.dim(), c.normEps());
        switch (w) {
            case SwiGlu<Tensor> mlp -> swiGlu(k, c.dim(), c.hiddenDim(), mlp.w1(), mlp.w3(), mlp.w2(), a.normed(), a.mlpOut(), a, rows);
            case MixtureOfExperts<Tensor> moe -> experts(k, c, moe, a, choice);
        }
        k.add(a.delta(), a.attnOut(), a.mlpOut(), rows * c.dim());
    }

    // out[rows, d] = w2 . (silu(w1 . x) * (w3 . x)), x[rows, d]; hidden size f
    private static void swiGlu(Kernels k, int d, int f, Tensor w1, Tensor w3, Tensor w2, float[] x, float[] out, Activations a,
                               int rows) {
        k.matmuls(new float[][] {a.gate(), a.up()}, x, new Tensor[] {w1, w3}, rows, d, new int[] {f, f});
        k.swiglu(a.gate(), a.gate(), a.up(), rows * f);
        k.matmul(out, a.gate(), w2, rows, f, d);
    }

    // mlpOut[B * n, d] = sum over real experts e of p_e(x) * expert_e(x) on the rows e took, x = normed[B * n, d]: each
    // expert takes its top k_e rows of each sequence by its probability (softmax over every expert, no-op ones included)
    private static void experts(Kernels k, ModelConfig c, MixtureOfExperts<Tensor> w, Activations a, ExpertChoice choice) {
        int d = c.dim();
        int batch = choice.batch();
        int n = choice.n();
        int rows = batch * n;
        int ke = choice.rowsPerExpert();
        int all = c.experts().routed();
        k.matmul(choice.logits(), a.normed(), w.router(), rows, d, all);
        k.zero(a.mlpOut(), rows * d);
        for (int e = 0; e < w.experts().size(); e++) {
            MixtureOfExperts.Expert<Tensor> expert = w.experts().get(e);
            float[] p = choice.probabilities()[e];
            int[] sel = choice.selected()[e];
            k.expertProbabilities(p, choice.logits(), e, rows, all);
            k.topK(sel, p, batch, n, ke);
            k.gather(a.expertX(), a.normed(), sel, batch, n, ke, d);
            swiGlu(k, d, c.experts().hiddenDim(), expert.w1(), expert.w3(), expert.w2(), a.expertX(), a.expertOut(), a, batch * ke);
            k.scatter(a.mlpOut(), a.expertOut(), sel, p, RouterWeighting.RAW, batch, n, ke, d);
        }
    }
}
