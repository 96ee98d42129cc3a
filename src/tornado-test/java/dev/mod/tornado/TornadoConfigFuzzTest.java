package dev.mod.tornado;

import dev.mod.ModException;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Properties;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Seeded random tornado-config settings (mod.tornado.* and TornadoVM's per-task properties on this plan's graphs): each
 * is taken or refused with a one-line ModException, never another exception. No device is needed for these.
 */
class TornadoConfigFuzzTest {
    private static final String[] KEYS = {"mod.tornado.matmul", "mod.tornado.layer0.p.matmul", "mod.tornado.layer0.p.local",
        "mod.tornado.layer0.q.local", "mod.tornado.zz", "layer0.p.local.workgroup.size", "layer0.p.global.workgroup.size",
        "layer0.t.local.workgroup.size", "layer7.t.global.workgroup.size", "s0.t0.local.workgroup.size", "mod.tornado.layer0.p.locl"};
    private static final String[] VALUES = {"rows", "tiled", "vector", "ro\\\\ws", "", "0", "-1", "1", "64", "1025", "abc", "2,2",
        "1,2,3,4", "99999999999", " 7 ", "\"", "=", "1e3", "NaN"};

    @Test
    void settingsAreTakenOrRefusedInOneLine() {
        GraphSpec graph = new GraphSpec("layer0");
        graph.task("t", g -> { });
        graph.task("p", g -> { });
        graph.products.add("p");
        SplittableRandom random = new SplittableRandom(20261207);
        for (int trial = 0; trial < 400; trial++) {
            Properties properties = new Properties();
            for (int i = 1 + random.nextInt(3); i > 0; i--) {
                properties.setProperty(KEYS[random.nextInt(KEYS.length)], VALUES[random.nextInt(VALUES.length)]);
            }
            try {
                TornadoPlacement placement = TornadoPlacement.read(properties);
                placement.check(properties, List.of(graph));
            } catch (ModException refused) {
                if (refused.getMessage().contains("\n")) {
                    fail("trial " + trial + ": " + refused.getMessage());
                }
            } catch (RuntimeException | Error other) {
                fail("trial " + trial + " " + properties + ": " + other, other);
            }
        }
    }
}
