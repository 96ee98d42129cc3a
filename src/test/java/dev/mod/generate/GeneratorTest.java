package dev.mod.generate;

import dev.mod.cpu.CpuKernels;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.RouterWeighting;
import dev.mod.plan.CausalPlan;
import dev.mod.plan.RoutingRule;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class GeneratorTest {
    private static final CpuKernels CPU = new CpuKernels(2);
    private static final Model MODEL = ModelInit.random(new ModelConfig(258, 32, 4, 4, 2, 48, 1e-5, 10000, 96, 0.25,
            List.of(1, 3), RouterWeighting.RAW), 3);
    private static final RoutingRule ROUTER = RoutingRule.ROUTER;

    @AfterAll
    static void close() {
        CPU.close();
    }

    private static Generator.Result generate(List<String> prompts, double temperature, long seed) {
        return Generator.generate(MODEL, (s, r, c) -> new CausalPlan(MODEL, CPU, ROUTER, s, r, c), prompts, new Generator.Settings(30, temperature, 0.9, seed, 0), null);
    }

    @Test
    void sameSeedSameTextOtherSeedOtherText() {
        Generator.Result a = generate(List.of("hello"), 1.0, 7);
        Generator.Result b = generate(List.of("hello"), 1.0, 7);
        Generator.Result c = generate(List.of("hello"), 1.0, 8);
        assertArrayEquals(a.tokens().get(0), b.tokens().get(0));
        assertEquals(a.texts(), b.texts());
        assertTrue(!java.util.Arrays.equals(a.tokens().get(0), c.tokens().get(0)), "another seed, another text");
    }

    /** The warm-up's steps are rolled back: the text is the same with and without it. */
    @Test
    void aWarmUpChangesNothingButTheTime() {
        Generator.Result plain = generate(List.of("hello"), 0.9, 5);
        Generator.Result warmed = Generator.generate(MODEL, (s, r, c) -> new CausalPlan(MODEL, CPU, ROUTER, s, r, c), List.of("hello"),
                new Generator.Settings(30, 0.9, 0.9, 5, 50), null);
        assertArrayEquals(plain.tokens().get(0), warmed.tokens().get(0));
        assertEquals(plain.kvBytes(), warmed.kvBytes());
        assertEquals(0, plain.warmupMs());
        assertTrue(warmed.warmupMs() > 0);
        // on a batch of prompts of different lengths, each rolled back to its own prompt after every round
        List<String> prompts = List.of("abc", "a longer prompt", "x");
        Generator.Result batch = generate(prompts, 0.9, 1);
        Generator.Result warmedBatch = Generator.generate(MODEL, (s, r, c) -> new CausalPlan(MODEL, CPU, ROUTER, s, r, c), prompts,
                new Generator.Settings(30, 0.9, 0.9, 1, 70), null);
        for (int i = 0; i < prompts.size(); i++) {
            assertArrayEquals(batch.tokens().get(i), warmedBatch.tokens().get(i), "prompt " + i);
        }
        assertEquals(batch.kvBytes(), warmedBatch.kvBytes());
        assertEquals(batch.decodeRouted(), warmedBatch.decodeRouted(), "the warm-up's steps are not counted");
    }

    @Test
    void aBatchGeneratesWhatEachPromptGeneratesAlone() {
        List<String> prompts = List.of("abc", "a longer prompt", "x");
        Generator.Result batch = generate(prompts, 0.9, 1);
        for (int i = 0; i < prompts.size(); i++) {
            Generator.Result alone = Generator.generate(MODEL, (s, r, c) -> new CausalPlan(MODEL, CPU, ROUTER, s, r, c), List.of(prompts.get(i)),
                    new Generator.Settings(30, 0.9, 0.9, 1 + 0x9E3779B97F4A7C15L * i, 0), null);
            assertArrayEquals(alone.tokens().get(0), batch.tokens().get(i), "prompt " + i);
        }
    }

    @Test
    void reportsTheRoutedCacheAgainstTheDenseOne() {
        Generator.Result r = generate(List.of("some prompt"), 0, 1);
        int generated = r.tokens().get(0).length;
        long held = "some prompt".length() + 1 + generated - 1;
        assertEquals(held, r.contextTokens());
        long perToken = 2L * MODEL.config().kvDim() * Float.BYTES;
        assertEquals(4 * held * perToken, r.denseKvBytes());
        double expected = 2 * held;
        for (int layer : List.of(1, 3)) {
            double prompt = r.prefillRouted().get(layer) * 12;
            double decode = generated > 1 ? r.decodeRouted().get(layer) * (generated - 1) : 0;
            expected += prompt + decode;
        }
        assertEquals(expected * perToken, r.kvBytes(), 1e-6);
        assertEquals(generated - 1, r.decodeTokens());
    }
}
