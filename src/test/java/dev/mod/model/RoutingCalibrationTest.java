package dev.mod.model;

import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

class RoutingCalibrationTest {
    @Test
    void thresholdsAreListedInLayerOrder() {
        Map<Integer, Double> given = new HashMap<>();
        for (int layer : List.of(23, 5, 17, 1, 11, 29, 3)) {
            given.put(layer, layer / 10.0);
        }
        RoutingCalibration c = new RoutingCalibration(given, 100, 10, 0.5);
        assertEquals(List.of(1, 3, 5, 11, 17, 23, 29), List.copyOf(c.thresholds().keySet()));
    }
}
