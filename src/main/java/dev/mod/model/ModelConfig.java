package dev.mod.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mod.ModException;
import dev.mod.StrictJson;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The architecture of a Mixture-of-Depths transformer (Llama-style blocks; some of them routed).
 * Validated on construction, so every ModelConfig in the program describes a model that can be built.
 */
public record ModelConfig(
        int vocabSize,
        int dim,
        int nLayers,
        int nHeads,
        int nKvHeads,
        int hiddenDim,
        double normEps,
        double ropeTheta,
        int maxSeqLen,
        double capacity,
        List<Integer> routedLayers,
        RouterWeighting routerWeighting,
        Experts experts) {

    private static final ObjectMapper JSON = StrictJson.mapper();
    private static final Set<String> FIELDS = Set.of("vocab_size", "dim", "n_layers", "n_heads", "n_kv_heads",
            "hidden_dim", "norm_eps", "rope_theta", "max_seq_len", "capacity", "routed_layers", "router_weighting", "experts");
    private static final Set<String> EXPERT_FIELDS = Set.of("count", "no_ops", "capacity", "hidden_dim");

    /** A model whose blocks' feed-forwards are SwiGLU MLPs of hiddenDim (no experts). */
    public ModelConfig(int vocabSize, int dim, int nLayers, int nHeads, int nKvHeads, int hiddenDim, double normEps,
                       double ropeTheta, int maxSeqLen, double capacity, List<Integer> routedLayers,
                       RouterWeighting routerWeighting) {
        this(vocabSize, dim, nLayers, nHeads, nKvHeads, hiddenDim, normEps, ropeTheta, maxSeqLen, capacity, routedLayers,
                routerWeighting, null);
    }

    public ModelConfig {
        routedLayers = List.copyOf(routedLayers);
        positive("vocab_size", vocabSize);
        positive("dim", dim);
        positive("n_layers", nLayers);
        positive("n_heads", nHeads);
        positive("n_kv_heads", nKvHeads);
        positive("hidden_dim", hiddenDim);
        positive("max_seq_len", maxSeqLen);
        if (nLayers > MAX_LAYERS) {
            throw new ModException("config: n_layers " + nLayers + " is above " + MAX_LAYERS);
        }
        int widestRows = Math.max(Math.max(vocabSize, hiddenDim), Math.max(dim, experts == null ? 0 : experts.hiddenDim()));
        long widest = (long) widestRows * dim;
        if (widest > MAX_ARRAY) {
            throw new ModException("config: a weight of " + widestRows + " x " + dim + " = " + widest
                    + " floats is above Java's array limit of " + MAX_ARRAY);
        }
        if (dim % nHeads != 0) {
            throw new ModException("config: dim " + dim + " is not divisible by n_heads " + nHeads);
        }
        if (nHeads % nKvHeads != 0) {
            throw new ModException("config: n_heads " + nHeads + " is not divisible by n_kv_heads " + nKvHeads);
        }
        if ((dim / nHeads) % 2 != 0) {
            throw new ModException("config: head dim " + dim / nHeads + " must be even for RoPE pairs");
        }
        if (!(normEps > 0) || !Double.isFinite(normEps)) {
            throw new ModException("config: norm_eps must be a positive number, got " + normEps);
        }
        if (!(ropeTheta > 0) || !Double.isFinite(ropeTheta)) {
            throw new ModException("config: rope_theta must be a positive number, got " + ropeTheta);
        }
        if (!(capacity > 0 && capacity <= 1)) {
            throw new ModException("config: capacity must be in (0, 1], got " + capacity);
        }
        if (routerWeighting == null) {
            throw new ModException("config: router_weighting is missing");
        }
        boolean[] seen = new boolean[nLayers];
        for (int layer : routedLayers) {
            if (layer < 0 || layer >= nLayers) {
                throw new ModException("config: routed layer index " + layer + " is out of range [0, " + nLayers + ")");
            }
            if (seen[layer]) {
                throw new ModException("config: routed layer index " + layer + " appears twice");
            }
            seen[layer] = true;
        }
    }

    /** The most layers a config may have (the largest public models have a few hundred). */
    public static final int MAX_LAYERS = 4096;
    /** The most elements of one Java array, which holds one tensor or one activation. */
    public static final long MAX_ARRAY = Integer.MAX_VALUE - 8;

    private static void positive(String field, int value) {
        if (value <= 0) {
            throw new ModException("config: " + field + " must be a positive integer, got " + value);
        }
    }

    /** The paper's best placement: every other block routed, the odd ones (1, 3, 5, ...). */
    public static List<Integer> everyOtherLayer(int nLayers) {
        if (nLayers > MAX_LAYERS) {
            // refused before the list is built: a billion layers would fill the heap first
            throw new ModException("config: n_layers " + nLayers + " is above " + MAX_LAYERS);
        }
        List<Integer> layers = new ArrayList<>();
        for (int i = 1; i < nLayers; i += 2) {
            layers.add(i);
        }
        return layers;
    }

    public int headDim() {
        return dim / nHeads;
    }

    public int kvDim() {
        return nKvHeads * headDim();
    }

    public boolean isRouted(int layer) {
        return routedLayers.contains(layer);
    }

    /** The same model with no routing: every block processes every token (router weights unused). */
    public ModelConfig dense() {
        return withRouting(capacity, List.of());
    }

    public ModelConfig withRouting(double newCapacity, List<Integer> newRoutedLayers) {
        return new ModelConfig(vocabSize, dim, nLayers, nHeads, nKvHeads, hiddenDim, normEps, ropeTheta,
                maxSeqLen, newCapacity, newRoutedLayers, routerWeighting, experts);
    }

    /** The same model with these experts in every block's feed-forward (null: SwiGLU MLPs of hidden_dim). */
    public ModelConfig withExperts(Experts newExperts) {
        return new ModelConfig(vocabSize, dim, nLayers, nHeads, nKvHeads, hiddenDim, normEps, ropeTheta,
                maxSeqLen, capacity, routedLayers, routerWeighting, newExperts);
    }

    public boolean hasExperts() {
        return experts != null;
    }

    /**
     * One block of this model's shape: dense (capacity null) or routed at the capacity. The unit of the
     * block benchmarks.
     */
    public ModelConfig oneBlock(Double blockCapacity) {
        return new ModelConfig(vocabSize, dim, 1, nHeads, nKvHeads, hiddenDim, normEps, ropeTheta, maxSeqLen,
                blockCapacity == null ? 1.0 : blockCapacity, blockCapacity == null ? List.of() : List.of(0), routerWeighting, experts);
    }

    /**
     * k = max(1, floor(capacity * T)), computed on the decimal value of the capacity so that
     * products such as 0.29 * 100 give 29 (binary doubles would give 28.999...).
     */
    public static int capacityTokens(double capacity, int seqLen) {
        BigDecimal product = new BigDecimal(Double.toString(capacity)).multiply(BigDecimal.valueOf(seqLen));
        return Math.max(1, product.setScale(0, RoundingMode.FLOOR).intValueExact());
    }

    public int capacityTokens(int seqLen) {
        return capacityTokens(capacity, seqLen);
    }

    /** Tokens a layer processes in a sequence of length T: k if routed, T if dense. */
    public int tokensProcessed(int layer, int seqLen) {
        return isRouted(layer) ? capacityTokens(seqLen) : seqLen;
    }

    /** Every tensor this config needs, by name, with its shape ([out, in] for weights). */
    public Map<String, long[]> tensorShapes() {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        long d = dim;
        shapes.put("tok_embeddings.weight", new long[] {vocabSize, d});
        for (int i = 0; i < nLayers; i++) {
            LayerWeights.shapes(this, i, 0).forEach(shapes::put);
        }
        shapes.put("norm.weight", new long[] {d});
        shapes.put("output.weight", new long[] {vocabSize, d});
        return shapes;
    }

    public String toJson() {
        try {
            return JSON.writerWithDefaultPrettyPrinter().writeValueAsString(toJsonTree());
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The JSON form as a tree, for results files that embed the config. */
    public ObjectNode toJsonTree() {
        ObjectNode node = JSON.createObjectNode();
        node.put("vocab_size", vocabSize);
        node.put("dim", dim);
        node.put("n_layers", nLayers);
        node.put("n_heads", nHeads);
        node.put("n_kv_heads", nKvHeads);
        node.put("hidden_dim", hiddenDim);
        node.put("norm_eps", normEps);
        node.put("rope_theta", ropeTheta);
        node.put("max_seq_len", maxSeqLen);
        node.put("capacity", capacity);
        ArrayNode routed = node.putArray("routed_layers");
        routedLayers.forEach(routed::add);
        node.put("router_weighting", routerWeighting.jsonName());
        if (experts != null) {
            ObjectNode e = node.putObject("experts");
            e.put("count", experts.count());
            e.put("no_ops", experts.noOps());
            e.put("capacity", experts.capacity());
            e.put("hidden_dim", experts.hiddenDim());
        }
        return node;
    }

    /** Parses the JSON form; unknown fields, wrong types and invalid values are one-line errors. */
    public static ModelConfig fromJson(String json) {
        JsonNode node;
        try {
            node = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw new ModException("config: not valid JSON (" + e.getOriginalMessage() + ")");
        }
        if (node == null || !node.isObject()) {
            throw new ModException("config: expected a JSON object");
        }
        for (Iterator<String> names = node.fieldNames(); names.hasNext(); ) {
            String name = names.next();
            if (!FIELDS.contains(name)) {
                throw new ModException("config: unknown field \"" + name + "\"");
            }
        }
        int nLayers = intField(node, "n_layers", null);
        if (nLayers > MAX_LAYERS) {
            // Checked before the default routed-layer list is built from it.
            throw new ModException("config: n_layers " + nLayers + " is above " + MAX_LAYERS);
        }
        int nHeads = intField(node, "n_heads", null);
        List<Integer> routed;
        if (node.has("routed_layers")) {
            JsonNode list = node.get("routed_layers");
            if (!list.isArray()) {
                throw new ModException("config: routed_layers must be a list of layer indices");
            }
            routed = new ArrayList<>();
            for (JsonNode item : list) {
                if (!item.isIntegralNumber() || !item.canConvertToInt()) {
                    throw new ModException("config: routed_layers must hold integers, got " + item);
                }
                routed.add(item.intValue());
            }
        } else {
            routed = everyOtherLayer(nLayers);
        }
        return new ModelConfig(
                intField(node, "vocab_size", null),
                intField(node, "dim", null),
                nLayers,
                nHeads,
                intField(node, "n_kv_heads", nHeads),
                intField(node, "hidden_dim", null),
                doubleField(node, "norm_eps", 1e-5),
                doubleField(node, "rope_theta", 10000.0),
                intField(node, "max_seq_len", null),
                doubleField(node, "capacity", null),
                routed,
                node.has("router_weighting")
                        ? RouterWeighting.fromJson(textField(node, "router_weighting"))
                        : RouterWeighting.RAW,
                node.has("experts") ? expertsField(node.get("experts")) : null);
    }

    private static Experts expertsField(JsonNode node) {
        if (!node.isObject()) {
            throw new ModException("config: experts must be an object {count, no_ops, capacity, hidden_dim}, got " + node);
        }
        for (Iterator<String> names = node.fieldNames(); names.hasNext(); ) {
            String name = names.next();
            if (!EXPERT_FIELDS.contains(name)) {
                throw new ModException("config: unknown field \"experts." + name + "\"");
            }
        }
        for (String required : List.of("count", "capacity", "hidden_dim")) {
            if (!node.has(required)) {
                throw new ModException("config: missing field \"experts." + required + "\"");
            }
        }
        return new Experts(intField(node, "count", null), intField(node, "no_ops", 0), doubleField(node, "capacity", null),
                intField(node, "hidden_dim", null));
    }

    private static int intField(JsonNode node, String name, Integer fallback) {
        JsonNode v = node.get(name);
        if (v == null || v.isNull()) {
            if (fallback == null) {
                throw new ModException("config: missing field \"" + name + "\"");
            }
            return fallback;
        }
        if (!v.isIntegralNumber() || !v.canConvertToInt()) {
            throw new ModException("config: \"" + name + "\" must be an integer, got " + v);
        }
        return v.intValue();
    }

    private static double doubleField(JsonNode node, String name, Double fallback) {
        JsonNode v = node.get(name);
        if (v == null || v.isNull()) {
            if (fallback == null) {
                throw new ModException("config: missing field \"" + name + "\"");
            }
            return fallback;
        }
        if (!v.isNumber()) {
            throw new ModException("config: \"" + name + "\" must be a number, got " + v);
        }
        return v.doubleValue();
    }

    private static String textField(JsonNode node, String name) {
        JsonNode v = node.get(name);
        if (!v.isTextual()) {
            throw new ModException("config: \"" + name + "\" must be a string, got " + v);
        }
        return v.textValue();
    }
}
