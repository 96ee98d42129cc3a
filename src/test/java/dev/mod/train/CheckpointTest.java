package dev.mod.train;

import dev.mod.ModException;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.RouterWeighting;
import dev.mod.plan.RoutingRule;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Nothing corrupt is accepted from a checkpoint: its checksum, its steps against the run, finite values only. */
class CheckpointTest {
    private static final ModelConfig C = new ModelConfig(40, 16, 2, 2, 2, 24, 1e-5, 10000, 16, 0.5, List.of(1), RouterWeighting.RAW);

    @TempDir
    Path dir;

    private static TrainSettings settings() {
        return new TrainSettings("test", C.toJsonTree(), 0, RoutingRule.TOP_K, 1, "none", 1 << 20, 20, 2, 8, 1e-3, 2, 0.1, 0.1,
                1.0, 0.01, 1.0, 1000, 2, 5);
    }

    private static Checkpoint checkpoint(long step, long adamStep) {
        Parameters p = Parameters.of(ModelInit.random(C, 1));
        AdamW adam = new AdamW(p, 0.1);
        return new Checkpoint(settings(), p, adam.m(), adam.v(), step, adamStep, 12345);
    }

    private Path written(Checkpoint cp) {
        Path file = dir.resolve("checkpoint.safetensors");
        cp.write(file);
        return file;
    }

    private static String refusal(Path file) {
        return assertThrows(ModException.class, () -> Checkpoint.read(file)).getMessage();
    }

    @Test
    void aGoodCheckpointReadsBackWhole() {
        Checkpoint cp = checkpoint(5, 5);
        Checkpoint back = Checkpoint.read(written(cp));
        assertEquals(5, back.step());
        assertEquals(12345, back.rngState());
        for (String name : cp.params().names()) {
            assertArrayEquals(cp.params().get(name), back.params().get(name), name);
        }
    }

    @Test
    void aFlippedBitAnywhereIsRefused() throws IOException {
        Path file = written(checkpoint(5, 5));
        long length = file.toFile().length();
        // the last byte is tensor data; a byte early in the header is metadata (both flipped separately)
        for (long at : new long[] {length - 1, length / 2, 40}) {
            Path copy = dir.resolve("flip-" + at + ".safetensors");
            java.nio.file.Files.copy(file, copy);
            try (RandomAccessFile raf = new RandomAccessFile(copy.toFile(), "rw")) {
                raf.seek(at);
                int b = raf.read();
                raf.seek(at);
                raf.write(b ^ 0x10);
            }
            assertThrows(ModException.class, () -> Checkpoint.read(copy), "a bit flipped at " + at);
        }
        String message = refusal(copyWithFlip(file, length - 1));
        assertTrue(message.contains("corrupt"), message);
    }

    private Path copyWithFlip(Path file, long at) throws IOException {
        Path copy = dir.resolve("flip.safetensors");
        java.nio.file.Files.copy(file, copy, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        try (RandomAccessFile raf = new RandomAccessFile(copy.toFile(), "rw")) {
            raf.seek(at);
            int b = raf.read();
            raf.seek(at);
            raf.write(b ^ 0x01);
        }
        return copy;
    }

    @Test
    void stepsOutsideTheRunAreRefused() {
        for (long step : new long[] {0, -3, 21, 1000}) {
            String message = refusal(written(checkpoint(step, step)));
            assertTrue(message.contains("is not within the run's 1 to 20"), message);
        }
        String message = refusal(written(checkpoint(5, 4)));
        assertTrue(message.contains("the optimizer's step 4 is not the checkpoint's step 5"), message);
    }

    @Test
    void aNonFiniteValueIsNeitherWrittenNorRead() {
        for (String kind : List.of("weight", "first moment", "second moment")) {
            Checkpoint cp = checkpoint(5, 5);
            Parameters target = switch (kind) {
                case "weight" -> cp.params();
                case "first moment" -> cp.m();
                default -> cp.v();
            };
            target.get("norm.weight")[3] = Float.NaN;
            String message = assertThrows(ModException.class, () -> written(cp)).getMessage();
            assertTrue(message.contains("non-finite value in") && message.contains("norm.weight"), kind + ": " + message);
        }
    }
}
