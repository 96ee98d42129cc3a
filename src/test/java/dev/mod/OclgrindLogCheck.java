package dev.mod;

import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Fails a test during which the Oclgrind simulator reported anything (a data race, an out-of-bounds access, barrier
 * divergence, an API error): the simulator only writes its reports to its log (OCLGRIND_LOG) and lets the kernel run on.
 * Active in the test JVMs the oclgrind profile runs on the simulator (-Dmod.oclgrindLog=FILE); elsewhere it does nothing.
 */
public final class OclgrindLogCheck implements BeforeEachCallback, AfterEachCallback {
    private static final String PROPERTY = "mod.oclgrindLog";
    private long before;

    /** Whether this JVM runs its tornado tests on the simulator (which runs kernels some hundred times slower than PoCL). */
    public static boolean onSimulator() {
        return System.getProperty(PROPERTY) != null;
    }

    @Override
    public void beforeEach(ExtensionContext context) throws IOException {
        Path log = log();
        before = log != null && Files.exists(log) ? Files.size(log) : 0;
    }

    @Override
    public void afterEach(ExtensionContext context) throws IOException {
        Path log = log();
        String reported = log == null ? "" : reportedSince(log, before);
        if (!reported.isEmpty()) {
            throw new AssertionError("Oclgrind reported during " + context.getDisplayName() + ":\n"
                    + reported.lines().limit(40).reduce((a, b) -> a + "\n" + b).orElse(""));
        }
    }

    /** What the log gained past its first `offset` bytes, stripped; empty when nothing. */
    static String reportedSince(Path log, long offset) throws IOException {
        if (!Files.exists(log) || Files.size(log) <= offset) {
            return "";
        }
        byte[] all = Files.readAllBytes(log);
        return new String(all, (int) offset, all.length - (int) offset, StandardCharsets.UTF_8).strip();
    }

    private static Path log() {
        String file = System.getProperty(PROPERTY);
        return file == null ? null : Path.of(file);
    }
}
