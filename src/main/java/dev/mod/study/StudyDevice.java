package dev.mod.study;

import dev.mod.model.Model;
import dev.mod.plan.ForwardPass;

/**
 * A device a study measures on: its id as --devices takes it ("cpu", "reference", "tornado:0:0"), a
 * description for the results file (name, driver), and how to open a forward pass on it.
 */
public interface StudyDevice extends AutoCloseable {
    String id();

    String description();

    ForwardPass open(Model model, int batch, int seqLen);

    @Override
    default void close() {
    }

    /** Opens a forward pass of a model for B sequences of T tokens on a device. */
    @FunctionalInterface
    interface Opener {
        ForwardPass open(Model model, int batch, int seqLen);
    }

    static StudyDevice of(String id, String description, Opener opener) {
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
        };
    }
}
