package dev.mod.tornado;

import dev.mod.ModException;

/**
 * Run by DriverErrorsTest in a JVM of its own: prints what TornadoVM's driver prints when OpenCL refuses a launch, between
 * lines of its own output, and asks the watch; exits 3 with the watch's one line when it fails the run, 0 when not.
 */
public final class DriverErrorsProbe {
    private DriverErrorsProbe() {
    }

    public static void main(String[] args) {
        DriverErrors watch = DriverErrors.get();
        System.out.print("before, no newline;");
        System.out.flush();
        watch.check("a clean run", "the probe");
        System.out.println(" after the first check");
        if (args.length > 0) {
            System.out.println("\tsome explanation the driver gives");
            System.out.println("[TornadoVM-OCL-JNI] ERROR : clEnqueueNDRangeKernel -> Returned: -5");
        }
        System.out.flush();
        try {
            watch.check("a forward pass", "the probe");
        } catch (ModException e) {
            System.err.println(e.getMessage());
            System.exit(3);
        }
        System.out.println("end");
    }
}
