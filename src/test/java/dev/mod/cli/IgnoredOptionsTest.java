package dev.mod.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/** Options and inputs that used to be taken and then ignored, or taken and fatal much later: each refused at once in one line. */
class IgnoredOptionsTest extends ConsoleTest {
    @TempDir
    Path dir;

    private Path model() {
        Path model = dir.resolve("m.safetensors");
        if (!Files.exists(model)) {
            assertEquals(0, mod("init", "--preset", "small", "--seed", "1", "--out", model.toString()), stderr());
        }
        return model;
    }

    @Test
    void aThresholdWithoutTheRouterRuleIsRefused() {
        String m = model().toString();
        // without --routing the threshold is the default router rule's, and checked as such
        for (String bad : new String[] {"2", "-5", "NaN"}) {
            refused("threshold must be in (0, 1)", "generate", "--model", m, "--prompt", "a", "--max-tokens", "1", "--threshold", bad);
        }
        refused("--threshold applies to --routing router, not to predictor", "forward", "--model", m, "--tokens", "1,2",
                "--routing", "predictor", "--threshold", "0.3", "--out", dir.resolve("o.safetensors").toString());
        refused("threshold must be in (0, 1), got NaN", "forward", "--model", m, "--tokens", "1,2", "--routing", "router",
                "--threshold", "NaN", "--out", dir.resolve("o.safetensors").toString());
    }

    @Test
    void trainingSettingsThatWouldEndInNaNAreRefused() throws Exception {
        Path text = Files.writeString(dir.resolve("t.txt"), "some text to train on, long enough for a few windows. ".repeat(40));
        for (String option : new String[] {"--weight-decay", "--aux-router", "--aux-predictor", "--clip"}) {
            refused("must be finite and >= 0", "train", "--preset", "small", "--data", text.toString(), "--steps", "1",
                    "--seq", "16", "--out", dir.resolve("run").toString(), option, "NaN");
        }
        refused("--max-data-bytes must be at least 1, got -1", "train", "--preset", "small", "--data", text.toString(),
                "--steps", "1", "--seq", "16", "--max-data-bytes", "-1", "--out", dir.resolve("run").toString());
        assertFalse(Files.exists(dir.resolve("run")), "nothing written");
    }

    @Test
    void inputsSaySoPlainly() {
        refused("row 1 is empty", "forward", "--model", model().toString(), "--tokens", "1;;2", "--out",
                dir.resolve("o.safetensors").toString());
        refused("it is a directory, not a safetensors file", "info", "--model", dir.toString());
        refused("cannot read config /nonexistent-config.json: no such file or directory", "init", "--config",
                "/nonexistent-config.json", "--out", dir.resolve("x.safetensors").toString());
    }
}
