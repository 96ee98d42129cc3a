package dev.mod.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mod.ModException;
import dev.mod.StrictJson;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The thresholds of the calibrated causal routing rule: a routed layer processes a token when its router
 * logit is above the layer's threshold. The thresholds were set on a calibration text so that each layer
 * routed the model's capacity of its tokens; tokens and seqLen say how much text that was. Stored in the
 * model file's metadata under "calibration".
 *
 * <p>A model with experts (Experts) also has, for each layer, one threshold per real expert on its probability: the
 * causal rule of expert choice, under which expert e takes a row when p_e is above its threshold, set on the same
 * text so that each expert took its capacity of the rows its feed-forward saw (expertThresholds; empty without
 * experts).
 */
public record RoutingCalibration(Map<Integer, Double> thresholds, Map<Integer, List<Double>> expertThresholds, long tokens,
                                 int seqLen, double capacity) {
    private static final ObjectMapper JSON = StrictJson.mapper();

    public RoutingCalibration {
        // in layer order (Map.copyOf's order changes from run to run)
        thresholds = Collections.unmodifiableMap(new TreeMap<>(thresholds));
        for (Map.Entry<Integer, Double> e : thresholds.entrySet()) {
            if (!Double.isFinite(e.getValue())) {
                throw new ModException("calibration: threshold of layer " + e.getKey() + " is not a finite number");
            }
        }
        TreeMap<Integer, List<Double>> experts = new TreeMap<>();
        for (Map.Entry<Integer, List<Double>> e : expertThresholds.entrySet()) {
            for (Double t : e.getValue()) {
                if (t == null || !Double.isFinite(t)) {
                    throw new ModException("calibration: an expert threshold of layer " + e.getKey() + " is not a finite number");
                }
            }
            experts.put(e.getKey(), List.copyOf(e.getValue()));
        }
        expertThresholds = Collections.unmodifiableMap(experts);
    }

    /** Thresholds of the routed layers only (a model without experts). */
    public RoutingCalibration(Map<Integer, Double> thresholds, long tokens, int seqLen, double capacity) {
        this(thresholds, Map.of(), tokens, seqLen, capacity);
    }

    /** The threshold on expert e's probability in a layer. */
    public double expertThreshold(int layer, int expert) {
        List<Double> t = expertThresholds.get(layer);
        if (t == null) {
            throw new ModException("calibration: no expert thresholds for layer " + layer);
        }
        return t.get(expert);
    }

    public double threshold(int layer) {
        Double t = thresholds.get(layer);
        if (t == null) {
            throw new ModException("calibration: no threshold for layer " + layer);
        }
        return t;
    }

    /** Refuses thresholds that do not cover exactly the config's routed layers, and its experts in every layer. */
    void check(ModelConfig config) {
        if (!new TreeMap<>(thresholds).keySet().equals(new java.util.TreeSet<>(config.routedLayers()))) {
            throw new ModException("calibration: thresholds for layers " + new TreeMap<>(thresholds).keySet()
                    + " but the config routes layers " + config.routedLayers());
        }
        if (!config.hasExperts()) {
            if (!expertThresholds.isEmpty()) {
                throw new ModException("calibration: expert thresholds, but the config has no experts");
            }
            return;
        }
        for (int layer = 0; layer < config.nLayers(); layer++) {
            List<Double> t = expertThresholds.get(layer);
            if (t == null || t.size() != config.experts().count()) {
                throw new ModException("calibration: layer " + layer + " needs a threshold for each of its " + config.experts().count()
                        + " experts, has " + (t == null ? 0 : t.size()));
            }
        }
        if (expertThresholds.size() != config.nLayers()) {
            throw new ModException("calibration: expert thresholds for layers " + expertThresholds.keySet() + " of a model of "
                    + config.nLayers());
        }
    }

    public String toJson() {
        ObjectNode node = JSON.createObjectNode();
        ObjectNode t = node.putObject("thresholds");
        new TreeMap<>(thresholds).forEach((layer, value) -> t.put(Integer.toString(layer), value));
        if (!expertThresholds.isEmpty()) {
            ObjectNode experts = node.putObject("expert_thresholds");
            expertThresholds.forEach((layer, values) -> values.forEach(experts.withArray(Integer.toString(layer))::add));
        }
        node.put("tokens", tokens);
        node.put("seq_len", seqLen);
        node.put("capacity", capacity);
        try {
            return JSON.writeValueAsString(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static int layerIndex(String key) {
        try {
            return Integer.parseInt(key);
        } catch (NumberFormatException bad) {
            throw new ModException("calibration: \"" + key + "\" is not a layer index");
        }
    }

    public static RoutingCalibration fromJson(String json) {
        try {
            JsonNode node = JSON.readTree(json);
            JsonNode t = node.path("thresholds");
            if (!t.isObject()) {
                throw new ModException("calibration: \"thresholds\" is missing");
            }
            Map<Integer, Double> thresholds = new TreeMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = t.properties().iterator(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (!e.getValue().isNumber()) {
                    throw new ModException("calibration: threshold of layer " + e.getKey() + " is not a number");
                }
                thresholds.put(layerIndex(e.getKey()), e.getValue().asDouble());
            }
            Map<Integer, List<Double>> experts = new TreeMap<>();
            JsonNode e = node.path("expert_thresholds");
            if (!e.isMissingNode()) {
                if (!e.isObject()) {
                    throw new ModException("calibration: \"expert_thresholds\" is not an object of layers");
                }
                for (Map.Entry<String, JsonNode> layer : e.properties()) {
                    List<Double> values = new ArrayList<>();
                    for (JsonNode v : layer.getValue()) {
                        if (!v.isNumber()) {
                            throw new ModException("calibration: an expert threshold of layer " + layer.getKey() + " is not a number");
                        }
                        values.add(v.asDouble());
                    }
                    experts.put(layerIndex(layer.getKey()), values);
                }
            }
            return new RoutingCalibration(thresholds, experts, node.path("tokens").asLong(), node.path("seq_len").asInt(),
                    node.path("capacity").asDouble());
        } catch (JsonProcessingException e) {
            throw new ModException("calibration: not valid JSON: " + e.getOriginalMessage(), e);
        }
    }
}
