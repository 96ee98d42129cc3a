package dev.mod.plan;

import dev.mod.model.Experts;
import dev.mod.model.FeedForward;
import dev.mod.model.MixtureOfExperts;
import dev.mod.model.ModelConfig;
import dev.mod.model.RouterWeighting;
import dev.mod.model.SwiGlu;
import dev.mod.model.Tensor;

/**
 * The feed-forward half of a block over n rows per sequence: f = a + feedForward(RMSNorm(h)). Each kind of
 * feed-forward (FeedForward) is one method here, chosen in apply; a mixture of experts routes with its ExpertChoice
 * and ExpertRule (both null for the other kinds).
 */
record FeedForwardStage(int layer, ModelConfig c, FeedForward<Tensor> w, Activations a, ExpertChoice choice, ExpertRule rule,
                        int batch, int n) implements Stage {

    /** Which rows of a mixture's feed-forward each expert takes: its top k_e of each sequence, or a causal rule. */
    interface ExpertRule {
        // sel = the rows of B sequences of n rows that expert e takes by its probabilities p[B * n], as topK writes them;
        // returns how many it takes of each sequence
        int select(Kernels k, int layer, int expert, float[] p, int[] sel, int batch, int n);

        /** Expert choice over a whole sequence (a forward pass): the top k_e = floor(capacity x n) rows of each. */
        static ExpertRule topK(Experts experts) {
            return (k, layer, expert, p, sel, batch, n) -> {
                int taken = experts.rowsPerExpert(n);
                k.topK(sel, p, batch, n, taken);
                return taken;
            };
        }
    }

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
        apply(k, c, w, a, choice, rule, layer, batch, n);
    }

    // delta[B * n, d] = attnOut + feedForward(RMSNorm(h[B * n, d])); experts choose their rows by the rule
    static void apply(Kernels k, ModelConfig c, FeedForward<Tensor> w, Activations a, ExpertChoice choice, ExpertRule rule, int layer,
                      int batch, int n) {
        int rows = batch * n;
        k.rmsnorm(a.normed(), a.h(), w.norm(), rows, c.dim(), c.normEps());
        switch (w) {
            case SwiGlu<Tensor> mlp -> swiGlu(k, c.dim(), c.hiddenDim(), mlp.w1(), mlp.w3(), mlp.w2(), a.normed(), a.mlpOut(), a, rows);
            case MixtureOfExperts<Tensor> moe -> experts(k, c, moe, a, choice, rule, layer, batch, n);
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

    // mlpOut[B * n, d] = sum over real experts e of p_e(x) * expert_e(x) on the rows e took, x = normed[B * n, d]: p_e is
    // e's share of a softmax over every expert (no-op ones included), and the rule picks each expert's rows by it
    private static void experts(Kernels k, ModelConfig c, MixtureOfExperts<Tensor> w, Activations a, ExpertChoice choice,
                                ExpertRule rule, int layer, int batch, int n) {
        int d = c.dim();
        int rows = batch * n;
        int all = c.experts().routed();
        k.matmul(choice.logits(), a.normed(), w.router(), rows, d, all);
        k.zero(a.mlpOut(), rows * d);
        for (int e = 0; e < w.experts().size(); e++) {
            MixtureOfExperts.Expert<Tensor> expert = w.experts().get(e);
            float[] p = choice.probabilities()[e];
            int[] sel = choice.selected()[e];
            k.expertProbabilities(p, choice.logits(), e, rows, all);
            int taken = rule.select(k, layer, e, p, sel, batch, n);
            if (taken == 0) {
                continue;
            }
            k.gather(a.expertX(), a.normed(), sel, batch, n, taken, d);
            swiGlu(k, d, c.experts().hiddenDim(), expert.w1(), expert.w3(), expert.w2(), a.expertX(), a.expertOut(), a, batch * taken);
            k.scatter(a.mlpOut(), a.expertOut(), sel, p, RouterWeighting.RAW, batch, n, taken, d);
        }
    }
}
