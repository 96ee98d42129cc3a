package dev.mod.cli;

import dev.mod.backend.Backend;
import dev.mod.backend.Backends;
import picocli.CommandLine.Command;

import java.util.List;
import java.util.concurrent.Callable;

@Command(name = "devices", mixinStandardHelpOptions = true,
        description = "List the backends and devices this build can run on: the CPU, and the devices TornadoVM sees "
                + "when run under TornadoVM (scripts/mod-tornado devices).")
final class DevicesCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        try (Backend cpu = Backends.start("cpu"); Backend reference = Backends.start("reference")) {
            for (Backend backend : List.of(cpu, reference)) {
                System.out.printf("%-10s %s%n", backend.name(), backend.devices().getFirst().description());
            }
        }
        List<Backend.Device> tornado = Backends.tornadoDevices();
        if (tornado.isEmpty()) {
            System.out.println("tornado    not available in this run: " + Backends.NOT_UNDER_TORNADO);
        }
        tornado.forEach(d -> System.out.printf("%s  %s%n", d.id(), d.description()));
        return 0;
    }
}
