package dev.mod.model;

import dev.mod.ModException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModelConfigTest {
    private static final String MINIMAL = """
            {"vocab_size": 10, "dim": 8, "n_layers": 5, "n_heads": 2, "hidden_dim": 12,
             "max_seq_len": 16, "capacity": 0.5}""";

    @ParameterizedTest
    @CsvSource({
            "0.125, 64, 8",
            "0.125, 2048, 256",
            "0.29, 100, 29",   // 0.29 * 100 is 28.999999999999996 in binary doubles
            "0.57, 100, 57",   // likewise 56.99999999999999
            "0.1, 30, 3",
            "0.01, 10, 1",     // floor gives 0; at least one token is processed
            "1.0, 7, 7",
            "0.5, 1, 1"})
    void capacityTokensIsTheExactFloorAndAtLeastOne(double capacity, int seqLen, int expected) {
        assertEquals(expected, ModelConfig.capacityTokens(capacity, seqLen));
    }

    @Test
    void defaultsFollowTheSpec() {
        ModelConfig c = ModelConfig.fromJson(MINIMAL);
        assertEquals(2, c.nKvHeads());
        assertEquals(1e-5, c.normEps());
        assertEquals(10000, c.ropeTheta());
        assertEquals(List.of(1, 3), c.routedLayers());
        assertEquals(RouterWeighting.RAW, c.routerWeighting());
    }

    @Test
    void jsonRoundTrips() {
        ModelConfig c = new ModelConfig(10, 8, 3, 4, 2, 12, 1e-6, 500000, 16, 0.125, List.of(0, 2), RouterWeighting.SIGMOID);
        assertEquals(c, ModelConfig.fromJson(c.toJson()));
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "\"capacity\": 0      | capacity must be in (0, 1]",
            "\"capacity\": 1.5    | capacity must be in (0, 1]",
            "\"dim\": 9           | dim 9 is not divisible by n_heads 2",
            "\"n_kv_heads\": 3    | n_heads 2 is not divisible by n_kv_heads 3",
            "\"routed_layers\": [5] | routed layer index 5 is out of range [0, 5)",
            "\"routed_layers\": [-1] | routed layer index -1 is out of range",
            "\"routed_layers\": [1, 1] | routed layer index 1 appears twice",
            "\"router_weighting\": \"softmax\" | router_weighting must be",
            "\"dim\": 10          | head dim 5 must be even",
            "\"dim\": \"8\"       | \"dim\" must be an integer",
            "\"colour\": 1        | unknown field \"colour\"",
            "\"vocab_size\": 0    | vocab_size must be a positive integer"})
    void invalidConfigsAreOneLineErrors(String override, String message) {
        // The override replaces the field where MINIMAL has it (a key given twice is an error of its own).
        String key = override.substring(0, override.indexOf(':'));
        String json = MINIMAL.contains(key) ? MINIMAL.replaceFirst(java.util.regex.Pattern.quote(key) + ": [^,}]+",
                java.util.regex.Matcher.quoteReplacement(override)) : MINIMAL.replace("}", ", " + override + "}");
        ModException e = assertThrows(ModException.class, () -> ModelConfig.fromJson(json));
        assertTrue(e.getMessage().contains(message), e.getMessage());
        assertTrue(!e.getMessage().contains("\n"), "one line: " + e.getMessage());
    }

    /** Sizes are checked before anything is allocated: a config too large to hold is one line, at once. */
    @Test
    void sizesBeyondWhatCanBeHeldAreRefusedBeforeAnythingIsAllocated() {
        String manyLayers = MINIMAL.replace("\"n_layers\": 5", "\"n_layers\": 2000000000");
        assertEquals("config: n_layers 2000000000 is above 4096",
                assertThrows(ModException.class, () -> ModelConfig.fromJson(manyLayers)).getMessage());
        String wide = MINIMAL.replace("\"hidden_dim\": 12", "\"hidden_dim\": 400000000");
        assertTrue(assertThrows(ModException.class, () -> ModelConfig.fromJson(wide)).getMessage()
                .startsWith("config: a weight of 400000000 x 8 = 3200000000 floats is above Java's array limit"));
        // Each tensor fits an array, all of them together do not fit this JVM's heap (100 layers of 3 x 1e8 floats).
        ModelConfig huge = new ModelConfig(256, 1024, 100, 8, 8, 100_000, 1e-5, 10000, 64, 0.5, List.of(), RouterWeighting.RAW);
        ModException e = assertThrows(ModException.class, () -> ModelInit.random(huge, 1));
        assertTrue(e.getMessage().matches("the model's weights need 116\\.0 GiB, more than the [0-9.]+ GiB this JVM may use .*"), e.getMessage());
        ModException batch = assertThrows(ModException.class, () -> dev.mod.plan.PlanShape.of(
                new ModelConfig(50_000, 8, 1, 2, 2, 12, 1e-5, 10000, 64, 1.0, List.of(), RouterWeighting.RAW), 1_000_000, 64));
        assertTrue(batch.getMessage().startsWith("a batch of 1000000 x 64 needs an activation of 3200000000000 floats"), batch.getMessage());
    }

    @Test
    void aKeyGivenTwiceOrContentAfterTheObjectIsRefused() {
        String twice = MINIMAL.replace("\"dim\": 8,", "\"dim\": 8, \"dim\": 16,");
        assertTrue(assertThrows(ModException.class, () -> ModelConfig.fromJson(twice)).getMessage().contains("Duplicate field 'dim'"));
        ModException trailing = assertThrows(ModException.class, () -> ModelConfig.fromJson(MINIMAL + " {\"dim\": 16}"));
        assertTrue(trailing.getMessage().startsWith("config: not valid JSON"), trailing.getMessage());
        ModelConfig.fromJson(MINIMAL + "\n  ");
    }

    @Test
    void missingFieldIsNamed() {
        ModException e = assertThrows(ModException.class, () -> ModelConfig.fromJson("{\"dim\": 8, \"n_layers\": 1, \"n_heads\": 2}"));
        assertTrue(e.getMessage().contains("missing field \"vocab_size\""), e.getMessage());
    }
}
