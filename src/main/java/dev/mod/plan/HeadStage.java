package dev.mod.plan;

import dev.mod.model.ModelConfig;
import dev.mod.model.Tensor;

/** logits = output . RMSNorm(x) with the final norm. */
record HeadStage(ModelConfig c, Tensor norm, Tensor output, Activations a, int rows) implements Stage {
    @Override
    public String name() {
        return "head";
    }

    @Override
    public String shapes() {
        return "x[" + rows + ", " + c.dim() + "] -> logits[" + rows + ", " + c.vocabSize() + "]";
    }

    @Override
    public void run(Kernels k) {
        k.rmsnorm(a.normed(), a.x(), norm, rows, c.dim(), c.normEps());
        k.matmul(a.logits(), a.normed(), output, rows, c.dim(), c.vocabSize());
    }
}
