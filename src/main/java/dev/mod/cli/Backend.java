package dev.mod.cli;

import dev.mod.cpu.CpuKernels;
import dev.mod.plan.Kernels;
import dev.mod.reference.ReferenceKernels;

/** The backends a command can run a plan on (--backend). */
enum Backend {
    /** Vector API kernels on all cores: the default. */
    cpu,
    /** Plain loops with double-precision sums: the oracle. */
    reference;

    Kernels kernels() {
        return switch (this) {
            case cpu -> new CpuKernels();
            case reference -> new ReferenceKernels();
        };
    }
}
