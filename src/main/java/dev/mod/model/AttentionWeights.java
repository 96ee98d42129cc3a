package dev.mod.model;

import java.util.function.BiFunction;

/**
 * The attention half of a block: its RMSNorm weight [d] and the projections wq [H dh, d], wk and wv [Hkv dh, d] and
 * wo [d, H dh]. W is however an executor holds a weight (a model Tensor, training's float[] master weights or
 * gradients, a device buffer).
 */
public record AttentionWeights<W>(W norm, W wq, W wk, W wv, W wo) {
    /** The same weights in another form; f gets each one's model-file name under the layer's prefix ("layers.{i}."). */
    public <V> AttentionWeights<V> map(String prefix, BiFunction<String, W, V> f) {
        return new AttentionWeights<>(
                f.apply(prefix + "attention_norm.weight", norm),
                f.apply(prefix + "attention.wq.weight", wq),
                f.apply(prefix + "attention.wk.weight", wk),
                f.apply(prefix + "attention.wv.weight", wv),
                f.apply(prefix + "attention.wo.weight", wo));
    }
}
