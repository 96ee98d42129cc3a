package dev.mod.train;

import dev.mod.ModException;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.RouterWeighting;
import dev.mod.plan.RoutingRule;
import dev.mod.sweep.SweepSpec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Seeded random mutations of a training checkpoint and of a sweep spec: each is read whole or refused with a one-line
 * ModException, never another exception; no mutated checkpoint is accepted with other contents. Bounded: 300 of each.
 */
class CorruptInputFuzzTest {
    private static final ModelConfig C = new ModelConfig(40, 16, 2, 2, 2, 24, 1e-5, 10000, 16, 0.5, List.of(1), RouterWeighting.RAW);

    @TempDir
    Path dir;

    @Test
    void mutatedCheckpointsAreRefusedInOneLine() throws IOException {
        TrainSettings s = new TrainSettings("test", C.toJsonTree(), 0, RoutingRule.TOP_K, 1, "none", 1 << 20, 20, 2, 8, 1e-3, 2, 0.1,
                0.1, 1.0, 0.01, 1.0, 1000, 2, 5);
        Parameters p = Parameters.of(ModelInit.random(C, 1));
        AdamW adam = new AdamW(p, 0.1);
        Path good = dir.resolve("good.safetensors");
        new Checkpoint(s, p, adam.m(), adam.v(), 5, 5, 99).write(good);
        byte[] original = Files.readAllBytes(good);
        SplittableRandom random = new SplittableRandom(20261205);
        Path file = dir.resolve("mutated.safetensors");
        for (int trial = 0; trial < 300; trial++) {
            byte[] bytes = original.clone();
            int edits = 1 + random.nextInt(3);
            for (int e = 0; e < edits; e++) {
                int at = random.nextInt(bytes.length);
                bytes[at] = (byte) (bytes[at] ^ (1 + random.nextInt(255)));
            }
            if (random.nextInt(8) == 0) {
                bytes = java.util.Arrays.copyOf(bytes, random.nextInt(bytes.length));
            }
            Files.write(file, bytes);
            try {
                Checkpoint read = Checkpoint.read(file);
                // accepted only if the mutation left every number as it was (a change in JSON whitespace, say)
                for (String name : p.names()) {
                    assertArrayEquals(p.get(name), read.params().get(name), "trial " + trial + " accepted other weights");
                }
            } catch (ModException refused) {
                if (refused.getMessage().contains("\n")) {
                    fail("trial " + trial + ": a message of several lines: " + refused.getMessage());
                }
            } catch (RuntimeException | Error other) {
                fail("trial " + trial + ": " + other, other);
            }
        }
    }

    @Test
    void mutatedSweepSpecsParseOrFailWithOneLine() {
        String original = SweepSpec.quick().toJson();
        SplittableRandom random = new SplittableRandom(20261206);
        String alphabet = "0123456789.-e,:[]{}\"ntruefalsx ";
        for (int trial = 0; trial < 300; trial++) {
            StringBuilder text = new StringBuilder(original);
            int edits = 1 + random.nextInt(3);
            for (int e = 0; e < edits; e++) {
                int at = random.nextInt(text.length());
                switch (random.nextInt(3)) {
                    case 0 -> text.setCharAt(at, alphabet.charAt(random.nextInt(alphabet.length())));
                    case 1 -> text.deleteCharAt(at);
                    default -> text.insert(at, alphabet.charAt(random.nextInt(alphabet.length())));
                }
            }
            try {
                SweepSpec.fromJson(text.toString(), "spec");
            } catch (ModException refused) {
                if (refused.getMessage().contains("\n") || refused.getMessage().contains("dev.mod.")) {
                    fail("trial " + trial + ": " + refused.getMessage());
                }
            } catch (RuntimeException | Error other) {
                fail("trial " + trial + ": " + other + " for " + text, other);
            }
        }
    }
}
