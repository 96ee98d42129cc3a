package dev.mod.cli;

import jdk.incubator.vector.FloatVector;
import picocli.CommandLine.Command;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "devices", mixinStandardHelpOptions = true,
        description = "List the backends and devices this build can run on: the CPU, and the devices TornadoVM sees "
                + "when run under TornadoVM (scripts/mod-tornado devices).")
final class DevicesCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        System.out.printf("cpu        %s, %d threads, %d-bit vectors (%s)%n", cpuName(),
                Runtime.getRuntime().availableProcessors(), FloatVector.SPECIES_PREFERRED.vectorBitSize(),
                FloatVector.SPECIES_PREFERRED);
        System.out.println("reference  plain Java on one thread (the oracle)");
        List<String> tornado = Backend.tornadoDeviceLines();
        if (tornado.isEmpty()) {
            System.out.println("tornado    not available in this run: " + Backend.NOT_UNDER_TORNADO);
        }
        tornado.forEach(System.out::println);
        return 0;
    }

    static String cpuName() {
        try {
            return Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name"))
                    .findFirst().map(l -> l.substring(l.indexOf(':') + 1).trim()).orElse(System.getProperty("os.arch"));
        } catch (IOException e) {
            return System.getProperty("os.arch");
        }
    }
}
