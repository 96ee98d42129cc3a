package dev.mod.model;

import java.util.ArrayList;
import java.util.List;
import java.util.function.BiConsumer;
import java.util.function.BiFunction;
import java.util.function.Function;

/**
 * One layer's block and its weights, in whatever form an executor holds them (W: a model Tensor, training's float[]
 * master weights or gradients, a device buffer): the attention half, the feed-forward, and in a routed layer what it
 * routes with (null in a dense one). Every weight's model-file name is given once, by the parts' map methods; an
 * executor reaches a weight through these typed accessors, never by its name.
 */
public record LayerWeights<W>(int index, AttentionWeights<W> attention, FeedForward<W> feedForward, RouterWeights<W> routing) {
    public boolean routed() {
        return routing != null;
    }

    /** The block's steps in order (BlockStep). */
    public List<BlockStep> steps() {
        return BlockStep.of(routed());
    }

    /** "layers.{index}.": the prefix of this layer's weights in model files. */
    public String prefix() {
        return "layers." + index + ".";
    }

    /** The same layer with every weight in another form; f gets the weight's model-file name and its value here. */
    public <V> LayerWeights<V> map(BiFunction<String, W, V> f) {
        String p = prefix();
        return new LayerWeights<>(index, attention.map(p, f), feedForward.map(p, f), routed() ? routing.map(p, f) : null);
    }

    /** Every weight with its model-file name, in the model file's order. */
    public void forEach(BiConsumer<String, W> visit) {
        map((name, w) -> {
            visit.accept(name, w);
            return w;
        });
    }

    /** The same layer's weights found by their model-file names (a model's tensors, training's parameters). */
    public <V> LayerWeights<V> lookUp(Function<String, V> byName) {
        return map((name, w) -> byName.apply(name));
    }

    /** The shapes of layer i's weights under config ([out, in] for matrices); predictor of hidden size P when P > 0. */
    public static LayerWeights<long[]> shapes(ModelConfig c, int i, int predictorDim) {
        long d = c.dim();
        long qDim = (long) c.nHeads() * c.headDim();
        long kv = c.kvDim();
        long f = c.hiddenDim();
        AttentionWeights<long[]> attention = new AttentionWeights<>(new long[] {d}, new long[] {qDim, d}, new long[] {kv, d},
                new long[] {kv, d}, new long[] {d, qDim});
        FeedForward<long[]> mlp = c.hasExperts() ? experts(c) : new SwiGlu<>(new long[] {d}, new long[] {f, d}, new long[] {f, d}, new long[] {d, f});
        RouterWeights<long[]> routing = !c.isRouted(i) ? null : predictorDim > 0
                ? new RouterWeights<>(new long[] {1, d}, new long[] {predictorDim, d}, new long[] {1, predictorDim})
                : new RouterWeights<>(new long[] {1, d}, null, null);
        return new LayerWeights<>(i, attention, mlp, routing);
    }

    private static MixtureOfExperts<long[]> experts(ModelConfig c) {
        long d = c.dim();
        long fe = c.experts().hiddenDim();
        List<MixtureOfExperts.Expert<long[]>> experts = new ArrayList<>();
        for (int e = 0; e < c.experts().count(); e++) {
            experts.add(new MixtureOfExperts.Expert<>(new long[] {fe, d}, new long[] {fe, d}, new long[] {d, fe}));
        }
        return new MixtureOfExperts<>(new long[] {d}, new long[] {c.experts().routed(), d}, experts);
    }
}
