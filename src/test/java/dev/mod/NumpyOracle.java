package dev.mod;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The NumPy transcription of the spec (src/test/python/spec_oracle.py), run as a separate process: found as
 * $MOD_PYTHON, else python3, when it can import NumPy. Tests that need it are skipped, with the reason
 * printed, on machines without one.
 */
public final class NumpyOracle {
    private static final String SCRIPT = "src/test/python/spec_oracle.py";
    private static String python;
    private static boolean searched;

    private NumpyOracle() {
    }

    /** The Python command, or null (and a printed reason) when there is no Python 3 with NumPy. */
    public static synchronized String python() {
        if (!searched) {
            searched = true;
            String candidate = System.getenv().getOrDefault("MOD_PYTHON", "python3");
            try {
                Process p = new ProcessBuilder(candidate, "-c", "import numpy").redirectErrorStream(true).start();
                if (p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0) {
                    python = candidate;
                }
            } catch (IOException | InterruptedException e) {
                python = null;
            }
            if (python == null) {
                System.out.println("NumPy oracle tests skipped: no Python 3 with NumPy (" + candidate
                        + "); set MOD_PYTHON or install python3-numpy");
            }
        }
        return python;
    }

    /** Runs the oracle script with these arguments; the test is skipped without NumPy and fails if the script does. */
    public static void run(String... args) throws IOException, InterruptedException {
        assumeTrue(python() != null, "no Python 3 with NumPy");
        List<String> command = new ArrayList<>(List.of(python, Path.of(SCRIPT).toString()));
        command.addAll(List.of(args));
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes());
        assumeTrue(p.waitFor(300, TimeUnit.SECONDS), "oracle timed out");
        assertEquals(0, p.exitValue(), "oracle failed: " + log);
    }
}
