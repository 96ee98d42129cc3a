package dev.mod.backend;

import jdk.incubator.vector.FloatVector;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The host CPU as listings and results files name it. */
public final class HostCpu {
    private HostCpu() {
    }

    /** Its model name from /proc/cpuinfo (the architecture where that is not readable). */
    public static String name() {
        try {
            return Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name"))
                    .findFirst().map(l -> l.substring(l.indexOf(':') + 1).trim()).orElse(System.getProperty("os.arch"));
        } catch (IOException e) {
            return System.getProperty("os.arch");
        }
    }

    /** "name, N threads, the vector species" */
    static String description(int threads) {
        return name() + ", " + threads + " threads, " + FloatVector.SPECIES_PREFERRED;
    }
}
