package dev.mod.tornado;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The watch on TornadoVM's driver output: in a JVM of its own (DriverErrorsProbe), a driver error line fails the next
 * check in one line; output passes through unchanged and in order, without the watch's markers.
 */
class DriverErrorsTest {
    private static Probe probe(String... args) throws Exception {
        List<String> command = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElseThrow(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                DriverErrorsProbe.class.getName()));
        command.addAll(List.of(args));
        Process process = new ProcessBuilder(command).start();
        String stdout = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        String stderr = new String(process.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        return new Probe(process.waitFor(), stdout, stderr);
    }

    private record Probe(int exit, String stdout, String stderr) {
    }

    @Test
    void aDriverErrorFailsTheNextCheckInOneLine() throws Exception {
        Probe p = probe("fail");
        assertEquals(3, p.exit(), p.stdout() + p.stderr());
        assertEquals("tornado: a forward pass on the probe: clEnqueueNDRangeKernel returned CL_OUT_OF_RESOURCES (-5) "
                + "(some explanation the driver gives); its results are not used", p.stderr().strip());
        assertEquals("before, no newline; after the first check\n\tsome explanation the driver gives\n"
                + "[TornadoVM-OCL-JNI] ERROR : clEnqueueNDRangeKernel -> Returned: -5\n", p.stdout());
    }

    @Test
    void withoutOneTheRunGoesOnAndItsOutputIsUnchanged() throws Exception {
        Probe p = probe();
        assertEquals(0, p.exit(), p.stdout() + p.stderr());
        assertEquals("before, no newline; after the first check\nend\n", p.stdout());
    }

    @Test
    void theDriversLineNamesTheCallAndTheOpenClError() {
        assertEquals("clEnqueueNDRangeKernel returned CL_OUT_OF_RESOURCES (-5)",
                DriverErrors.describe("clEnqueueNDRangeKernel -> Returned: -5"));
        assertEquals("clBuildProgram returned CL_BUILD_PROGRAM_FAILURE (-11)", DriverErrors.describe("clBuildProgram -> Returned: -11"));
        assertEquals("clFinish returned error (-9999)", DriverErrors.describe("clFinish -> Returned: -9999"));
        assertEquals("something else", DriverErrors.describe(" something else "));
    }
}
