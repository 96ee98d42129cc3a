package dev.mod.io;

import dev.mod.ModException;
import dev.mod.TestModels;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.RouterWeighting;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Seeded random mutations of a good model file, mostly in its header (length, JSON, config), and of a config's
 * JSON: every one loads or is refused with a one-line ModException, never another exception, and none allocates
 * more than ALLOCATION_BOUND bytes of heap on the way (the size checks keep a mutated dimension from allocating; the
 * good file is about 40 KB). Bounded: 400 of each, a few seconds.
 */
class ModelFileFuzzTest {
    private static final long ALLOCATION_BOUND = 16L << 20;
    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) java.lang.management.ManagementFactory.getThreadMXBean();

    private static long allocated() {
        return THREADS.getThreadAllocatedBytes(Thread.currentThread().threadId());
    }

    private static void checkAllocation(long before, int trial) {
        long bytes = allocated() - before;
        assertTrue(bytes < ALLOCATION_BOUND, "trial " + trial + " allocated " + bytes + " bytes");
    }

    @TempDir
    Path dir;

    @Test
    void mutatedModelFilesLoadOrFailWithOneLine() throws IOException {
        ModelConfig config = TestModels.config(2, 2, 0.25, List.of(1), RouterWeighting.SIGMOID);
        Path good = dir.resolve("good.safetensors");
        ModelFile.save(TestModels.model(config, 3), good);
        byte[] original = Files.readAllBytes(good);
        int headerEnd = 8 + (int) java.nio.ByteBuffer.wrap(original, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        String header = new String(original, 8, headerEnd - 8, StandardCharsets.UTF_8);
        SplittableRandom random = new SplittableRandom(20261202);
        byte[] digits = "0123456789".getBytes(StandardCharsets.US_ASCII);
        Path file = dir.resolve("mutated.safetensors");
        int refused = 0;
        for (int trial = 0; trial < 400; trial++) {
            byte[] bytes = original.clone();
            int edits = 1 + random.nextInt(4);
            boolean truncate = false;
            for (int e = 0; e < edits; e++) {
                int kind = random.nextInt(4);
                if (kind == 0) {
                    bytes[random.nextInt(8)] = (byte) random.nextInt(256); // the header length
                } else if (kind == 1) {
                    bytes[8 + random.nextInt(headerEnd - 8)] = (byte) random.nextInt(256); // any header byte
                } else if (kind == 2) {
                    // a digit of the header (a shape, an offset, a config value) replaced by another digit
                    int at = 8 + random.nextInt(headerEnd - 8);
                    if (Character.isDigit(header.charAt(at - 8))) {
                        bytes[at] = digits[random.nextInt(10)];
                    }
                } else {
                    truncate = true;
                }
            }
            if (truncate) {
                bytes = java.util.Arrays.copyOf(bytes, random.nextInt(bytes.length));
            }
            Files.write(file, bytes);
            long before = allocated();
            try (Model m = ModelFile.load(file)) {
                m.config();
            } catch (ModException expected) {
                refused++;
                String message = String.valueOf(expected.getMessage());
                assertTrue(!message.isBlank() && !message.contains("\n"), "trial " + trial + ": " + message);
            } catch (RuntimeException | Error other) {
                fail("trial " + trial + ": " + other, other);
            }
            checkAllocation(before, trial);
        }
        assertTrue(refused > 200, "most mutations are refused: " + refused);
    }

    @Test
    void mutatedConfigsParseOrFailWithOneLine() {
        String good = TestModels.config(2, 2, 0.25, List.of(1), RouterWeighting.SIGMOID).toJson();
        String alphabet = "0123456789-+.eE,:{}[]\" truxyz";
        SplittableRandom random = new SplittableRandom(7);
        for (int trial = 0; trial < 400; trial++) {
            StringBuilder json = new StringBuilder(good);
            for (int e = 1 + random.nextInt(3); e > 0; e--) {
                int at = random.nextInt(json.length());
                if (random.nextBoolean()) {
                    json.setCharAt(at, alphabet.charAt(random.nextInt(alphabet.length())));
                } else {
                    json.insert(at, alphabet.charAt(random.nextInt(alphabet.length())));
                }
            }
            long before = allocated();
            try {
                ModelConfig.fromJson(json.toString());
            } catch (ModException expected) {
                assertTrue(!String.valueOf(expected.getMessage()).contains("\n"), "trial " + trial + ": " + expected.getMessage());
            } catch (RuntimeException | Error other) {
                fail("trial " + trial + " (" + json + "): " + other, other);
            }
            checkAllocation(before, trial);
        }
    }
}
