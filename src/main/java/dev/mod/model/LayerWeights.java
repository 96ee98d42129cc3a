package dev.mod.model;

/**
 * The tensors of one transformer block; router is null in a dense block, the predictor's two matrices
 * (w1 [P, d], w2 [1, P]) are null unless the block is routed and the model has a causal predictor.
 * Weights are [out, in].
 */
public record LayerWeights(
        Tensor attentionNorm,
        Tensor wq,
        Tensor wk,
        Tensor wv,
        Tensor wo,
        Tensor ffnNorm,
        Tensor w1,
        Tensor w2,
        Tensor w3,
        Tensor router,
        Tensor predictorW1,
        Tensor predictorW2) {
}
