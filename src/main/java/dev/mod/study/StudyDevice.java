package dev.mod.study;

import dev.mod.model.Model;
import dev.mod.plan.ForwardPass;
import dev.mod.plan.Kernels;

/**
 * A device a study measures on: its id as --devices takes it ("cpu", "reference", "tornado:0:0"), a
 * description for the results file (name, driver), how to open a forward pass on it, and the kernels its
 * decode steps run on (null where the device has no decode path).
 */
public interface StudyDevice extends AutoCloseable {
    String id();

    String description();

    ForwardPass open(Model model, int batch, int seqLen);

    /** The kernels of the causal (decode) plan on this device; null when the device has none. */
    Kernels decodeKernels();

    @Override
    default void close() {
    }

    /** Opens a forward pass of a model for B sequences of T tokens on a device. */
    @FunctionalInterface
    interface Opener {
        ForwardPass open(Model model, int batch, int seqLen);
    }

    static StudyDevice of(String id, String description, Opener opener, Kernels decodeKernels) {
        return new StudyDevice() {
            @Override
            public String id() {
                return id;
            }

            @Override
            public String description() {
                return description;
            }

            @Override
            public ForwardPass open(Model model, int batch, int seqLen) {
                return opener.open(model, batch, seqLen);
            }

            @Override
            public Kernels decodeKernels() {
                return decodeKernels;
            }
        };
    }
}
