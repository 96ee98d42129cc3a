package dev.mod.model;

/** The tensors of one transformer block; router is null in a dense block. Weights are [out, in]. */
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
        Tensor router) {
}
