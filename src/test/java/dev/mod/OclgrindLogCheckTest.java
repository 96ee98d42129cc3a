package dev.mod;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The simulator's log as OclgrindLogCheck reads it: only what a test added counts. */
class OclgrindLogCheckTest {
    @Test
    void onlyWhatTheLogGainedDuringTheTestIsReported(@TempDir Path dir) throws Exception {
        Path log = dir.resolve("oclgrind.log");
        assertEquals("", OclgrindLogCheck.reportedSince(log, 0), "no log, nothing reported");
        Files.writeString(log, "\nInvalid write of size 4 at global memory address 0x10\n\tKernel: k\n");
        long before = Files.size(log);
        assertEquals("", OclgrindLogCheck.reportedSince(log, before));
        Files.writeString(log, "\nRead-write data race at local memory address 0x4\n", StandardOpenOption.APPEND);
        assertEquals("Read-write data race at local memory address 0x4", OclgrindLogCheck.reportedSince(log, before));
        assertEquals("Invalid write of size 4 at global memory address 0x10\n\tKernel: k\n\nRead-write data race at local "
                + "memory address 0x4", OclgrindLogCheck.reportedSince(log, 0));
    }
}
