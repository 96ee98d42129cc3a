package dev.mod.cli;

import dev.mod.plan.Kernels;
import dev.mod.reference.ReferenceKernels;

/** The backends a command can run a plan on (--backend). */
enum Backend {
    reference;

    Kernels kernels() {
        return switch (this) {
            case reference -> new ReferenceKernels();
        };
    }
}
