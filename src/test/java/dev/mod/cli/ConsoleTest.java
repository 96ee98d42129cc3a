package dev.mod.cli;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

/** Base of the tests that run the CLI in-process: captures what it prints, resets before each command. */
abstract class ConsoleTest {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();
    private PrintStream savedOut;
    private PrintStream savedErr;

    @BeforeEach
    void capture() {
        savedOut = System.out;
        savedErr = System.err;
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    }

    @AfterEach
    void restore() {
        System.setOut(savedOut);
        System.setErr(savedErr);
    }

    /** Runs `mod args...` and returns its exit code; stdout() and stderr() then hold what it printed. */
    int mod(String... args) {
        out.reset();
        err.reset();
        return Main.run(args);
    }

    String stdout() {
        return out.toString(StandardCharsets.UTF_8);
    }

    String stderr() {
        return err.toString(StandardCharsets.UTF_8);
    }

    /** `mod args` exits 1 with one line "mod: error: ..." that contains the message, and prints nothing on standard output. */
    void refused(String message, String... args) {
        org.junit.jupiter.api.Assertions.assertEquals(1, mod(args), String.join(" ", args) + ": " + stderr());
        String line = stderr().strip();
        org.junit.jupiter.api.Assertions.assertTrue(line.startsWith("mod: error: ") && line.contains(message) && !line.contains("\n"),
                stderr());
        org.junit.jupiter.api.Assertions.assertEquals("", stdout());
    }
}
