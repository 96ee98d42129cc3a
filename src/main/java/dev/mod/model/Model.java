package dev.mod.model;

import dev.mod.ModException;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * A config and the tensors it names, checked against each other: every tensor present, float-typed
 * and of the config's shape. Closing the model releases the memory mapping it was loaded from.
 */
public final class Model implements AutoCloseable {
    /**
     * Tensors a config does not require: router weights may stay in a file whose config no longer routes
     * that layer (a dense counterpart); predictor weights are there when the model has a causal predictor.
     */
    private static final Pattern OPTIONAL = Pattern.compile("layers\\.\\d+\\.(router|predictor\\.w[12])\\.weight");

    private final ModelConfig config;
    private final Map<String, Tensor> tensors;
    private final AutoCloseable owner;
    private final List<LayerWeights<Tensor>> layers;
    private final int predictorDim;
    private final RoutingCalibration calibration;
    private final String tokenizer;

    /** The tokenizer of every model mod makes: ids 0-255 are bytes, then BOS and EOS (data.ByteTokenizer). */
    public static final String BYTE_TOKENS = "bytes";

    public Model(ModelConfig config, Map<String, Tensor> tensors, AutoCloseable owner) {
        this(config, tensors, owner, null);
    }

    /** A model with the causal-routing thresholds set by a calibration (null: none), over the byte vocabulary. */
    public Model(ModelConfig config, Map<String, Tensor> tensors, AutoCloseable owner, RoutingCalibration calibration) {
        this(config, tensors, owner, calibration, BYTE_TOKENS);
    }

    /**
     * A model whose token ids mean what `tokenizer` says: {@link #BYTE_TOKENS} (mod's byte tokenizer, which the text
     * commands use), or a description of another tokenizer (a converted checkpoint's), which they refuse.
     */
    public Model(ModelConfig config, Map<String, Tensor> tensors, AutoCloseable owner, RoutingCalibration calibration,
                 String tokenizer) {
        this.config = config;
        this.tokenizer = tokenizer;
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
        this.predictorDim = checkPredictors(config, this.tensors);
        if (calibration != null) {
            calibration.check(config);
        }
        this.calibration = calibration;
        this.layers = java.util.stream.IntStream.range(0, config.nLayers())
                .mapToObj(i -> LayerWeights.shapes(config, i, predictorDim).lookUp(this::tensor)).toList();
    }

    /**
     * The causal predictor's hidden size P, or 0 when the model has none: every routed layer then has
     * predictor.w1 [P, d] and predictor.w2 [1, P], or none has.
     */
    private static int checkPredictors(ModelConfig config, Map<String, Tensor> tensors) {
        int found = -1;
        for (int layer : config.routedLayers()) {
            String p = "layers." + layer + ".predictor.";
            Tensor w1 = tensors.get(p + "w1.weight");
            Tensor w2 = tensors.get(p + "w2.weight");
            int dim = 0;
            if (w1 != null || w2 != null) {
                if (w1 == null || w2 == null) {
                    throw new ModException("model: layer " + layer + " has only one of the predictor's tensors "
                            + p + "w1.weight and " + p + "w2.weight");
                }
                long[] s1 = w1.shape();
                long[] s2 = w2.shape();
                if (s1.length != 2 || s1[1] != config.dim() || s1[0] < 1 || !Arrays.equals(s2, new long[] {1, s1[0]})) {
                    throw new ModException("model: predictor of layer " + layer + " has shapes " + w1.shapeString()
                            + " and " + w2.shapeString() + ", expected [P, " + config.dim() + "] and [1, P]");
                }
                if (!w1.dtype().isFloat() || !w2.dtype().isFloat()) {
                    throw new ModException("model: predictor of layer " + layer + " is not float-typed");
                }
                dim = (int) s1[0];
            }
            if (found >= 0 && dim != found) {
                throw new ModException("model: routed layers disagree on the predictor (hidden size " + found
                        + " against " + dim + " at layer " + layer + ")");
            }
            found = dim;
        }
        return Math.max(found, 0);
    }

    /** P, the hidden size of the causal routing predictor; 0 when the model has no predictor. */
    public int predictorDim() {
        return predictorDim;
    }

    /** The thresholds of the calibrated causal rule, or null when the model was not calibrated. */
    public RoutingCalibration calibration() {
        return calibration;
    }

    /** The same weights with calibrated thresholds. Valid while this model is open. */
    public Model withCalibration(RoutingCalibration thresholds) {
        return new Model(config, tensors, null, thresholds, tokenizer);
    }

    /** What the token ids mean: {@link #BYTE_TOKENS}, or another tokenizer's description. */
    public String tokenizer() {
        return tokenizer;
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

    /** Layer i's block and its weights. */
    public LayerWeights<Tensor> layer(int i) {
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

    /** Parameters of the causal routing predictors (0 without them): used in generation only, not in a forward pass. */
    public long predictorParameterCount() {
        return (long) config.routedLayers().size() * ((long) predictorDim * config.dim() + predictorDim);
    }

    /** How the matrices (embeddings, projections, output) are stored: usually one type, more in a hand-made file. */
    public SortedSet<DType> matrixTypes() {
        SortedSet<DType> types = new TreeSet<>();
        tensors.forEach((name, t) -> {
            if (isMatrix(name, t)) {
                types.add(t.dtype());
            }
        });
        return types;
    }

    private static boolean isMatrix(String name, Tensor t) {
        return t.rank() == 2 && !name.contains(".router.") && !name.contains(".predictor.");
    }

    /**
     * The same model with its matrices (embeddings, attention and MLP projections, output) stored as `type`
     * (rounded to nearest even for BF16 and F16); norms, routers and predictors stay as they are, being small and
     * where precision matters. Valid while this model is open.
     */
    public Model withMatrixType(DType type) {
        Map<String, Tensor> converted = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            Tensor t = e.getValue();
            converted.put(e.getKey(), isMatrix(e.getKey(), t) ? t.as(type) : t);
        }
        return new Model(config, converted, null, calibration, tokenizer);
    }

    /** The dense counterpart: same weights, no routed layers. Valid while this model is open. */
    public Model asDense() {
        return withConfig(config.dense());
    }

    /** The same weights under another routing (capacity, routed layers). Valid while this model is open. */
    public Model withConfig(ModelConfig other) {
        return new Model(other, tensors, null, other.routedLayers().equals(config.routedLayers()) ? calibration : null, tokenizer);
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
