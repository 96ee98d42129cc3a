package dev.mod.train;

import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.Tensor;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The trainable tensors of a model as FP32 arrays (the master weights), in the model file's order: every
 * tensor the config names, then the routed layers' predictor weights when the model has a predictor.
 * A gradient or optimizer moment is a Parameters of the same shapes.
 */
public final class Parameters {
    private final Map<String, float[]> values = new LinkedHashMap<>();
    private final Map<String, long[]> shapes = new LinkedHashMap<>();
    private List<String> names;

    private Parameters() {
    }

    /** The model's tensors, copied to FP32. */
    public static Parameters of(Model model) {
        Parameters p = new Parameters();
        for (Map.Entry<String, Tensor> e : model.tensors().entrySet()) {
            if (!model.config().tensorShapes().containsKey(e.getKey()) && !e.getKey().contains(".predictor.")) {
                continue;
            }
            p.values.put(e.getKey(), e.getValue().toFloatArray());
            p.shapes.put(e.getKey(), e.getValue().shape());
        }
        return p;
    }

    /** Named arrays, in the given order (a checkpoint's tensors, their prefix taken off). */
    static Parameters of(List<Tensor> tensors, String prefix) {
        Parameters p = new Parameters();
        for (Tensor t : tensors) {
            p.values.put(t.name().substring(prefix.length()), t.toFloatArray());
            p.shapes.put(t.name().substring(prefix.length()), t.shape());
        }
        return p;
    }

    /** Zeros of the same shapes. */
    public Parameters zerosLike() {
        Parameters p = new Parameters();
        for (Map.Entry<String, float[]> e : values.entrySet()) {
            p.values.put(e.getKey(), new float[e.getValue().length]);
            p.shapes.put(e.getKey(), shapes.get(e.getKey()));
        }
        return p;
    }

    public float[] get(String name) {
        float[] v = values.get(name);
        if (v == null) {
            throw new IllegalArgumentException("no parameter " + name);
        }
        return v;
    }

    /** Adds an array (a tensor the starting model lacks, such as a new predictor's). */
    void put(String name, float[] value, long[] shape) {
        if (values.putIfAbsent(name, value) != null) {
            throw new IllegalArgumentException(name + " is there already");
        }
        shapes.put(name, shape);
    }

    public boolean has(String name) {
        return values.containsKey(name);
    }

    public long[] shape(String name) {
        return shapes.get(name);
    }

    public List<String> names() {
        if (names == null || names.size() != values.size()) {
            names = List.copyOf(values.keySet());
        }
        return names;
    }

    /** The parameters as model tensors (views of these arrays, named as in model files, with the given prefix). */
    public List<Tensor> tensors(String prefix) {
        List<Tensor> list = new ArrayList<>();
        values.forEach((name, v) -> list.add(Tensor.of(prefix + name, v, shapes.get(name))));
        return list;
    }

    /** A model over these arrays (they are shared, not copied). */
    public Model model(ModelConfig config) {
        return model(config, Model.BYTE_TOKENS);
    }

    /** The same, its token ids those of the named tokenizer (Model.tokenizer()). */
    public Model model(ModelConfig config, String tokenizer) {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (Tensor t : tensors("")) {
            tensors.put(t.name(), t);
        }
        return new Model(config, tensors, null, null, tokenizer);
    }
}
