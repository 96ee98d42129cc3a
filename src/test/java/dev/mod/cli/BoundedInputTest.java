package dev.mod.cli;

import dev.mod.ModException;
import dev.mod.model.ModelConfig;
import dev.mod.sweep.SweepSpec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Inputs bounded before they are read or allocated: each one line, exit 1, nothing left behind. */
class BoundedInputTest extends ConsoleTest {
    @TempDir
    Path dir;

    @Test
    void aDeviceOrAPipeIsNotReadAsText() throws Exception {
        refused("data: /dev/zero is neither a regular file nor a folder", "train", "--preset", "small", "--data", "/dev/zero",
                "--steps", "1", "--seq", "16", "--out", dir.resolve("run").toString());
        refused("data: /dev/zero is neither a regular file nor a folder", "train", "--preset", "small", "--data", "/dev/zero",
                "--max-data-bytes", "1000", "--steps", "1", "--seq", "16", "--out", dir.resolve("run").toString());
        Path fifo = dir.resolve("fifo");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        refused("is neither a regular file nor a folder", "train", "--preset", "small", "--data", fifo.toString(), "--steps", "1",
                "--seq", "16", "--out", dir.resolve("run").toString());
        refused("/dev/zero is not a regular file", "init", "--config", "/dev/zero", "--out", dir.resolve("m.safetensors").toString());
        refused("is not a regular file", "forward", "--model", "tiny", "--tokens-file", fifo.toString(), "--out",
                dir.resolve("o.safetensors").toString());
        assertFalse(Files.exists(dir.resolve("run")), "nothing written");
    }

    @Test
    void aBatchTooLargeForTheHeapIsRefusedBeforeTheRunWritesAnything() throws Exception {
        Path text = Files.writeString(dir.resolve("t.txt"), "text to train on. ".repeat(200));
        // train prints what it is about to train before the run starts, so this refusal follows a line on standard output
        assertEquals(1, mod("train", "--preset", "small", "--data", text.toString(), "--steps", "1", "--seq", "16", "--batch",
                "100000000", "--out", dir.resolve("huge").toString()));
        assertTrue(stderr().strip().startsWith("mod: error: a training step of 100000000 x 16 tokens")
                && !stderr().strip().contains("\n"), stderr());
        assertFalse(Files.exists(dir.resolve("huge")), "no settings.json left behind");
    }

    @Test
    void evaluationBatchesAreBounded() throws Exception {
        Path text = Files.writeString(dir.resolve("t.txt"), "text to train on. ".repeat(200));
        refused("--eval-batches must be at most 10000, got 1000000000", "train", "--preset", "small", "--data", text.toString(),
                "--steps", "1", "--seq", "16", "--eval-batches", "1000000000", "--out", dir.resolve("e").toString());
        String spec = SweepSpec.quick().toJson().replaceFirst("\"eval_batches\" : \\d+", "\"eval_batches\" : 1000000000");
        ModException e = assertThrows(ModException.class, () -> SweepSpec.fromJson(spec, "spec"));
        assertTrue(e.getMessage().contains("eval_batches must be from 1 to 10000"), e.getMessage());
    }

    @Test
    void generationAsksForNoMoreThanTheHeapAndSaysItsContextRight() throws Exception {
        Path model = dir.resolve("m.safetensors");
        assertEquals(0, mod("init", "--preset", "small", "--seed", "1", "--out", model.toString()), stderr());
        refused("need a context of 2147483649, above the model's max_seq_len", "generate", "--model", model.toString(), "--prompt", "a",
                "--max-tokens", "2147483647");
    }

    @Test
    void aBillionLayersAreRefusedBeforeTheirListIsBuilt() {
        ModException e = assertThrows(ModException.class, () -> ModelConfig.everyOtherLayer(1_000_000_000));
        assertTrue(e.getMessage().contains("n_layers 1000000000 is above"), e.getMessage());
        String spec = SweepSpec.quick().toJson().replaceFirst("\"n_layers\" : \\d+", "\"n_layers\" : 1000000000");
        e = assertThrows(ModException.class, () -> SweepSpec.fromJson(spec, "spec"));
        assertTrue(e.getMessage().contains("n_layers 1000000000 is above"), e.getMessage());
        assertTrue(List.of(1, 3).equals(ModelConfig.everyOtherLayer(4)));
    }
}
