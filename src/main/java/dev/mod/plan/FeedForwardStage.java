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
    // e's share of a softmax over every expert (no-op ones included), and the rule picks each expert's rows by it. The
    // experts' products run as groups (one hand-off for every expert's w1 and w3, one for their w2s).
    private static void experts(Kernels k, ModelConfig c, MixtureOfExperts<Tensor> w, Activations a, ExpertChoice choice,
                                ExpertRule rule, int layer, int batch, int n) {
        int d = c.dim();
        int fe = c.experts().hiddenDim();
        int rows = batch * n;
        int all = c.experts().routed();
        int count = w.experts().size();
        int[] taken = choice.taken();
        k.matmul(choice.logits(), a.normed(), w.router(), rows, d, all);
        k.zero(a.mlpOut(), rows * d);
        for (int e = 0; e < count; e++) {
            k.expertProbabilities(choice.probabilities()[e], choice.logits(), e, rows, all);
            taken[e] = rule.select(k, layer, e, choice.probabilities()[e], choice.selected()[e], batch, n);
            k.gather(a.expertX()[e], a.normed(), choice.selected()[e], batch, n, taken[e], d);
        }
        Tensor[] gateUp = new Tensor[2 * count];
        Tensor[] down = new Tensor[count];
        float[][] gateUpIn = new float[2 * count][];
        float[][] gateUpOut = new float[2 * count][];
        int[] gateUpRows = new int[2 * count];
        int[] downRows = new int[count];
        for (int e = 0; e < count; e++) {
            MixtureOfExperts.Expert<Tensor> expert = w.experts().get(e);
            gateUp[2 * e] = expert.w1();
            gateUp[2 * e + 1] = expert.w3();
            gateUpIn[2 * e] = a.expertX()[e];
            gateUpIn[2 * e + 1] = a.expertX()[e];
            gateUpOut[2 * e] = a.expertGate()[e];
            gateUpOut[2 * e + 1] = a.expertUp()[e];
            gateUpRows[2 * e] = batch * taken[e];
            gateUpRows[2 * e + 1] = batch * taken[e];
            down[e] = expert.w2();
            downRows[e] = batch * taken[e];
        }
        k.matmulGroups(gateUpOut, gateUpIn, gateUp, gateUpRows, 2 * count);
        for (int e = 0; e < count; e++) {
            k.swiglu(a.expertGate()[e], a.expertGate()[e], a.expertUp()[e], batch * taken[e] * fe);
        }
        k.matmulGroups(a.expertOut(), a.expertGate(), down, downRows, count);
        for (int e = 0; e < count; e++) {
            if (taken[e] > 0) {
                k.scatter(a.mlpOut(), a.expertOut()[e], choice.selected()[e], choice.probabilities()[e], RouterWeighting.RAW, batch, n,
                        taken[e], d);
            }
        }
    }
}
