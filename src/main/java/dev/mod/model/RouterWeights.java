package dev.mod.model;

import java.util.function.BiFunction;

/**
 * What a routed block decides with: the router [1, d] (r = w . x on the raw residual stream), and the causal
 * predictor's w1 [P, d] and w2 [1, P] when the model has one (both null otherwise).
 */
public record RouterWeights<W>(W router, W predictorW1, W predictorW2) {
    public boolean hasPredictor() {
        return predictorW1 != null;
    }

    /** The same weights in another form; f gets each one's model-file name under the layer's prefix ("layers.{i}."). */
    public <V> RouterWeights<V> map(String prefix, BiFunction<String, W, V> f) {
        return new RouterWeights<>(
                f.apply(prefix + "router.weight", router),
                hasPredictor() ? f.apply(prefix + "predictor.w1.weight", predictorW1) : null,
                hasPredictor() ? f.apply(prefix + "predictor.w2.weight", predictorW2) : null);
    }
}
