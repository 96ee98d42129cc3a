package dev.mod.model;

import java.util.function.BiFunction;

/**
 * The feed-forward half of a block, behind its own seam: each kind is a record of its weights here, and each executor
 * has one class that runs it (the plan's stage, training's forward and backward twins, the TornadoVM tasks). A new kind
 * (a mixture of experts) is a new record and one class per executor; the block around it does not change.
 */
public sealed interface FeedForward<W> permits SwiGlu, MixtureOfExperts {
    /** The RMSNorm weight [d] in front of the feed-forward. */
    W norm();

    /** The same weights in another form; f gets each one's model-file name under the layer's prefix ("layers.{i}."). */
    <V> FeedForward<V> map(String prefix, BiFunction<String, W, V> f);
}
