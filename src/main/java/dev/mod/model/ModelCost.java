package dev.mod.model;

/**
 * Analytic cost of a forward pass. FLOPs count the matrix products only (a multiply-add is 2 FLOPs);
 * attention counts the causal pairs actually computed, n(n+1)/2 per head for n processed tokens.
 * Norms, RoPE, softmax, top-k, gather and scatter are left out: they are O(n * d), not O(n * d^2).
 */
public final class ModelCost {
    private ModelCost() {
    }

    /** FLOPs of one forward pass over one sequence of T tokens. */
    public static double forwardFlops(ModelConfig c, int seqLen) {
        double flops = 0;
        for (int layer = 0; layer < c.nLayers(); layer++) {
            flops += layerFlops(c, layer, seqLen);
        }
        return flops + 2.0 * seqLen * c.dim() * c.vocabSize();
    }

    /** FLOPs of one block over one sequence of T tokens (its router included when routed). */
    public static double layerFlops(ModelConfig c, int layer, int seqLen) {
        double n = c.tokensProcessed(layer, seqLen);
        double d = c.dim();
        double qDim = (double) c.nHeads() * c.headDim();
        double projections = 2 * n * d * (qDim + 2.0 * c.kvDim()) + 2 * n * qDim * d;
        double attention = 2.0 * 2 * c.headDim() * c.nHeads() * n * (n + 1) / 2;
        double router = c.isRouted(layer) ? 2 * seqLen * d : 0;
        return projections + attention + feedForwardFlops(c, (int) n) + router;
    }

    /**
     * FLOPs of one block's feed-forward over the n rows of a sequence it sees: the SwiGLU MLP's three products, or with
     * experts the router's scores of every row and each real expert's three products over the k_e rows it takes.
     */
    public static double feedForwardFlops(ModelConfig c, int n) {
        double d = c.dim();
        if (!c.hasExperts()) {
            return 3 * 2.0 * n * d * c.hiddenDim();
        }
        Experts e = c.experts();
        return 2.0 * n * d * e.routed() + e.count() * 3 * 2.0 * e.rowsPerExpert(n) * d * e.hiddenDim();
    }

    /**
     * Parameters a token uses on average in a forward pass: all of them, less the share of the experts' weights that the
     * experts' capacities leave out (each expert runs on its capacity's share of the rows).
     */
    public static double activeParameters(ModelConfig c, long parameters) {
        if (!c.hasExperts()) {
            return parameters;
        }
        Experts e = c.experts();
        double perExpert = 3.0 * c.dim() * e.hiddenDim();
        return parameters - c.nLayers() * e.count() * (1 - e.capacity()) * perExpert;
    }

    /**
     * FLOPs of training the causal predictors (P hidden units, one per routed layer) over one sequence of T tokens:
     * forward (w1 [P, d], w2 [1, P]) and the weights' gradients, 2 x (2Pd + 2P), and the hidden units' gradient through
     * w2, 2P, per token and routed layer; its input is a stop-gradient, so no gradient flows to the stream.
     */
    public static double predictorTrainingFlops(ModelConfig c, int predictorDim, int seqLen) {
        double p = predictorDim;
        return c.routedLayers().size() * (double) seqLen * (4 * p * c.dim() + 6 * p);
    }

    /**
     * KV-cache bytes per token of context, F32 keys and values: a dense block caches every token,
     * a routed block only the routed fraction (its capacity) of them.
     */
    public static double kvCacheBytesPerToken(ModelConfig c) {
        double perBlock = 2.0 * c.kvDim() * Float.BYTES;
        double bytes = 0;
        for (int layer = 0; layer < c.nLayers(); layer++) {
            bytes += c.isRouted(layer) ? perBlock * c.capacity() : perBlock;
        }
        return bytes;
    }
}
