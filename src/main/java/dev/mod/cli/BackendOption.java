package dev.mod.cli;

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
                    + "(TornadoVM task graphs; under scripts/mod-tornado).")
    void name(String name) {
        if (!Backends.NAMES.contains(name)) {
            throw new ParameterException(spec.commandLine(), "--backend: unknown backend \"" + name + "\" ("
                    + String.join(", ", Backends.NAMES) + ")");
        }
        this.name = name;
    }

    @Spec(Spec.Target.MIXEE)
    CommandSpec spec;

    String name;

    /** The chosen backend, started: a one-line error for an unknown name or a backend this run cannot have. */
    Backend start() {
        return Backends.start(name);
    }

    static final class Names implements Iterable<String> {
        @Override
        public java.util.Iterator<String> iterator() {
            return Backends.NAMES.iterator();
        }
    }
}
