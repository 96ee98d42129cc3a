package dev.mod.cli;

import dev.mod.ModException;
import dev.mod.backend.Backend;
import dev.mod.backend.Backends;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** --backend, shared by every command that runs a model. */
final class BackendOption {
    @Option(names = "--backend", defaultValue = "cpu", paramLabel = "BACKEND", completionCandidates = Names.class,
            description = "cpu (Vector API kernels on every core, the default), reference (plain loops, the oracle) or tornado "
                    + "(TornadoVM task graphs; under scripts/mod-tornado). Where a command takes a device, tornado:B:D names one "
                    + "of `mod devices`.")
    void name(String value) {
        int colon = value.indexOf(':');
        String backend = colon < 0 ? value : value.substring(0, colon);
        if (!Backends.NAMES.contains(backend)) {
            throw new ParameterException(spec.commandLine(), "--backend: unknown backend \"" + backend + "\" ("
                    + String.join(", ", Backends.NAMES) + ")");
        }
        if (colon >= 0 && !backend.equals("tornado")) {
            throw new ParameterException(spec.commandLine(), "--backend " + value + ": only the tornado backend has devices (tornado:B:D)");
        }
        this.name = backend;
        this.device = colon < 0 ? null : value;
    }

    @Spec(Spec.Target.MIXEE)
    CommandSpec spec;

    String name;
    /** The device a tornado:B:D value names; null for the backend's default. */
    String device;

    /** The chosen backend, started: a one-line error for an unknown name or a backend this run cannot have. */
    Backend start() {
        if (device != null) {
            throw new ModException("--backend " + device + ": this command runs on the backend's default device (tornado-config's "
                    + "mod.tornado.device chooses it); give --backend tornado");
        }
        return started(Runtime.getRuntime().availableProcessors());
    }

    /** The chosen backend for a command that takes a device (train, sweep): cpu on a number of threads, or tornado. */
    Backend startForTraining(int cpuThreads) {
        return started(cpuThreads);
    }

    /** Asking for the tornado backend where this run cannot have it is a usage error (exit 2), as an unknown name is. */
    private Backend started(int cpuThreads) {
        if (name.equals("cpu")) {
            return Backends.cpu(cpuThreads);
        }
        try {
            return Backends.start(name);
        } catch (ModException e) {
            if (e.getMessage().equals(Backends.NOT_UNDER_TORNADO)) {
                throw new ParameterException(spec.commandLine(), "--backend " + name + ": " + e.getMessage());
            }
            throw e;
        }
    }

    static final class Names implements Iterable<String> {
        @Override
        public java.util.Iterator<String> iterator() {
            return Backends.NAMES.iterator();
        }
    }
}
