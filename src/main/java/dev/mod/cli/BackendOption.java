package dev.mod.cli;

import picocli.CommandLine.Option;

/** --backend, shared by every command that runs a model. */
final class BackendOption {
    @Option(names = "--backend", defaultValue = "cpu", paramLabel = "BACKEND",
            description = "cpu (Vector API kernels on every core, the default), reference (plain loops, the oracle) or tornado "
                    + "(TornadoVM task graphs; under scripts/mod-tornado).")
    Backend backend;
}
