package dev.mod.plan;

import dev.mod.ModException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Every routing rule by its name: one place says what it is called, whether it is causal and how it trains. */
class RoutingRuleTest {
    @Test
    void everyNameGivesTheRuleOfThatName() {
        for (String name : RoutingRule.NAMES) {
            RoutingRule rule = RoutingRule.named(name, 0.3);
            assertEquals(name, rule.name());
            assertEquals(rule, RoutingRule.named(rule.settingsName(), 0.3), "a settings name reads back as its rule");
        }
        assertEquals(6, RoutingRule.NAMES.size());
    }

    @Test
    void onlyTheCausalRulesDecideTokenByToken() {
        assertFalse(RoutingRule.TOP_K.causal());
        assertFalse(RoutingRule.STOCHASTIC.causal());
        assertFalse(RoutingRule.GAUSSIAN.causal());
        assertTrue(RoutingRule.ROUTER.causal() && RoutingRule.PREDICTOR.causal() && RoutingRule.CALIBRATED.causal());
        assertEquals(RoutingRule.Training.ROUTES, RoutingRule.TOP_K.training());
        assertEquals(RoutingRule.Training.ROUTES, RoutingRule.STOCHASTIC.training());
        assertEquals(RoutingRule.Training.ROUTES, RoutingRule.GAUSSIAN.training());
        assertEquals(RoutingRule.Training.ROUTER_BCE, RoutingRule.ROUTER.training());
        assertEquals(RoutingRule.Training.PREDICTOR_BCE, RoutingRule.PREDICTOR.training());
        assertThrows(IllegalStateException.class,
                () -> RoutingRule.TOP_K.decide(null, null, null, 0, new float[1], new float[1], 1, new int[1], new float[0]));
    }

    @Test
    void theRouterRulesThresholdIsOnTheLogit() {
        RoutingRule.Device device = new RoutingRule.Router(0.75).device(null, 1);
        assertEquals(RoutingRule.Device.Kind.LOGIT_ABOVE, device.kind());
        assertEquals(Math.log(3), device.logitThreshold(), 1e-15);
        int[] routed = new int[3];
        new RoutingRule.Router(0.75).decide(null, null, null, 1, null, new float[] {1.0f, 1.2f, -4f}, 3, routed, new float[0]);
        assertEquals(java.util.List.of(0, 1, 0), java.util.Arrays.stream(routed).boxed().toList());
    }

    @Test
    void topKIsLearnedInSettingsFilesAndUnknownNamesAreRefused() {
        assertEquals("learned", RoutingRule.TOP_K.settingsName());
        assertSame(RoutingRule.TOP_K, RoutingRule.named("learned"));
        ModException e = assertThrows(ModException.class, () -> RoutingRule.named("topK", 0.5));
        assertEquals("routing: unknown rule \"topK\"; one of topk, stochastic, gaussian, router, predictor, calibrated", e.getMessage());
        assertThrows(ModException.class, () -> new RoutingRule.Router(1.0));
    }
}
