package dev.mod.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mod.ModException;
import dev.mod.StrictJson;

import java.util.Collections;
import java.util.Iterator;
import java.util.Map;
import java.util.TreeMap;

/**
 * The thresholds of the calibrated causal routing rule: a routed layer processes a token when its router
 * logit is above the layer's threshold. The thresholds were set on a calibration text so that each layer
 * routed the model's capacity of its tokens; tokens and seqLen say how much text that was. Stored in the
 * model file's metadata under "calibration".
 */
public record RoutingCalibration(Map<Integer, Double> thresholds, long tokens, int seqLen, double capacity) {
    private static final ObjectMapper JSON = StrictJson.mapper();

    public RoutingCalibration {
        // in layer order (Map.copyOf's order changes from run to run)
        thresholds = Collections.unmodifiableMap(new TreeMap<>(thresholds));
        for (Map.Entry<Integer, Double> e : thresholds.entrySet()) {
            if (!Double.isFinite(e.getValue())) {
                throw new ModException("calibration: threshold of layer " + e.getKey() + " is not a finite number");
            }
        }
    }

    public double threshold(int layer) {
        Double t = thresholds.get(layer);
        if (t == null) {
            throw new ModException("calibration: no threshold for layer " + layer);
        }
        return t;
    }

    /** Refuses thresholds that do not cover exactly the config's routed layers. */
    void check(ModelConfig config) {
        if (!new TreeMap<>(thresholds).keySet().equals(new java.util.TreeSet<>(config.routedLayers()))) {
            throw new ModException("calibration: thresholds for layers " + new TreeMap<>(thresholds).keySet()
                    + " but the config routes layers " + config.routedLayers());
        }
    }

    public String toJson() {
        ObjectNode node = JSON.createObjectNode();
        ObjectNode t = node.putObject("thresholds");
        new TreeMap<>(thresholds).forEach((layer, value) -> t.put(Integer.toString(layer), value));
        node.put("tokens", tokens);
        node.put("seq_len", seqLen);
        node.put("capacity", capacity);
        try {
            return JSON.writeValueAsString(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
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
                try {
                    thresholds.put(Integer.parseInt(e.getKey()), e.getValue().asDouble());
                } catch (NumberFormatException bad) {
                    throw new ModException("calibration: \"" + e.getKey() + "\" is not a layer index");
                }
            }
            return new RoutingCalibration(thresholds, node.path("tokens").asLong(), node.path("seq_len").asInt(),
                    node.path("capacity").asDouble());
        } catch (JsonProcessingException e) {
            throw new ModException("calibration: not valid JSON: " + e.getOriginalMessage(), e);
        }
    }
}
