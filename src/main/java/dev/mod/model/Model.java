package dev.mod.model;

import dev.mod.ModException;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A config and the tensors it names, checked against each other: every tensor present, float-typed
 * and of the config's shape. Closing the model releases the memory mapping it was loaded from.
 */
public final class Model implements AutoCloseable {
    /** Router weights may stay in a file whose config no longer routes that layer (a dense counterpart). */
    private static final Pattern OPTIONAL = Pattern.compile("layers\\.\\d+\\.router\\.weight");

    private final ModelConfig config;
    private final Map<String, Tensor> tensors;
    private final AutoCloseable owner;
    private final List<LayerWeights> layers;

    public Model(ModelConfig config, Map<String, Tensor> tensors, AutoCloseable owner) {
        this.config = config;
        this.tensors = Map.copyOf(tensors);
        this.owner = owner;
        Map<String, long[]> expected = config.tensorShapes();
        for (Map.Entry<String, long[]> e : expected.entrySet()) {
            Tensor t = tensors.get(e.getKey());
            if (t == null) {
                throw new ModException("model: missing tensor " + e.getKey());
            }
            if (!t.dtype().isFloat()) {
                throw new ModException("model: tensor " + e.getKey() + " has dtype " + t.dtype() + ", expected a float type");
            }
            if (!Arrays.equals(t.shape(), e.getValue())) {
                throw new ModException("model: tensor " + e.getKey() + " has shape " + t.shapeString()
                        + " but the config needs " + Arrays.toString(e.getValue()));
            }
        }
        for (String name : tensors.keySet()) {
            if (!expected.containsKey(name) && !OPTIONAL.matcher(name).matches()) {
                throw new ModException("model: unexpected tensor " + name + " (not part of this config)");
            }
        }
        this.layers = java.util.stream.IntStream.range(0, config.nLayers()).mapToObj(this::layerWeights).toList();
    }

    private LayerWeights layerWeights(int i) {
        String p = "layers." + i + ".";
        return new LayerWeights(
                tensor(p + "attention_norm.weight"),
                tensor(p + "attention.wq.weight"),
                tensor(p + "attention.wk.weight"),
                tensor(p + "attention.wv.weight"),
                tensor(p + "attention.wo.weight"),
                tensor(p + "ffn_norm.weight"),
                tensor(p + "feed_forward.w1.weight"),
                tensor(p + "feed_forward.w2.weight"),
                tensor(p + "feed_forward.w3.weight"),
                config.isRouted(i) ? tensor(p + "router.weight") : null);
    }

    public ModelConfig config() {
        return config;
    }

    public Tensor tensor(String name) {
        Tensor t = tensors.get(name);
        if (t == null) {
            throw new ModException("model: missing tensor " + name);
        }
        return t;
    }

    /** All tensors, in the config's order (then any optional extras). */
    public Map<String, Tensor> tensors() {
        Map<String, Tensor> ordered = new LinkedHashMap<>();
        for (String name : config.tensorShapes().keySet()) {
            ordered.put(name, tensors.get(name));
        }
        tensors.keySet().stream().sorted().forEach(name -> ordered.putIfAbsent(name, tensors.get(name)));
        return ordered;
    }

    public LayerWeights layer(int i) {
        return layers.get(i);
    }

    public Tensor embeddings() {
        return tensor("tok_embeddings.weight");
    }

    public Tensor finalNorm() {
        return tensor("norm.weight");
    }

    public Tensor output() {
        return tensor("output.weight");
    }

    /** Parameters the config uses (router weights of unrouted layers not counted). */
    public long parameterCount() {
        return config.tensorShapes().values().stream().mapToLong(Tensor::numel).sum();
    }

    /** The dense counterpart: same weights, no routed layers. Valid while this model is open. */
    public Model asDense() {
        return withConfig(config.dense());
    }

    /** The same weights under another routing (capacity, routed layers). Valid while this model is open. */
    public Model withConfig(ModelConfig other) {
        return new Model(other, tensors, null);
    }

    @Override
    public void close() {
        if (owner != null) {
            try {
                owner.close();
            } catch (Exception e) {
                throw new ModException("model: could not release its file mapping: " + e.getMessage(), e);
            }
        }
    }
}
