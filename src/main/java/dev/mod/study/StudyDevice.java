package dev.mod.study;

import dev.mod.backend.Backend;
import dev.mod.model.DType;
import dev.mod.model.Model;
import dev.mod.plan.CausalPass;
import dev.mod.plan.RoutingRule;
import dev.mod.plan.ForwardPass;
import dev.mod.plan.Kernels;

/**
 * A device a study measures on: its id as --devices takes it ("cpu", "reference", "tornado:0:0"), a
 * description for the results file (name, driver), how to open a forward pass and a causal (decode) pass on it,
 * and the host kernels that calibrate the decode rows' routing thresholds.
 */
public interface StudyDevice extends AutoCloseable {
    String id();

    String description();

    ForwardPass open(Model model, int batch, int seqLen);

    /** A causal pass for decode steps on this device. */
    CausalPass openCausal(Model model, RoutingRule rule, int sequences, int maxRows, int context);

    /** The host kernels that calibrate the decode rows' thresholds (a property of the model, set before any device runs it). */
    Kernels calibrationKernels();

    @Override
    default void close() {
    }

    /** Opens a forward pass of a model for B sequences of T tokens on a device. */
    @FunctionalInterface
    interface Opener {
        ForwardPass open(Model model, int batch, int seqLen);
    }

    /** Opens a causal pass of a model under a rule on a device. */
    @FunctionalInterface
    interface CausalOpener {
        CausalPass open(Model model, RoutingRule rule, int sequences, int maxRows, int context);
    }

    /**
     * A device of a backend by id, its passes measured (transfers counted where the backend counts them); `calibration`
     * supplies the host kernels that calibrate the decode rows.
     */
    static StudyDevice of(Backend backend, String id, Backend calibration) {
        String description = backend.devices().stream().filter(d -> d.id().equals(id)).findFirst()
                .orElseThrow(() -> new IllegalArgumentException("the " + backend.name() + " backend has no device " + id))
                .description();
        return of(id, backend.name() + " backend: " + description, (m, b, t) -> backend.openMeasured(m, b, t, id),
                (m, rule, sequences, maxRows, context) -> backend.openCausal(m, rule, sequences, maxRows, context, id, DType.F32),
                calibration.hostKernels("calibration"));
    }

    static StudyDevice of(String id, String description, Opener opener, CausalOpener causalOpener, Kernels calibrationKernels) {
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
            public CausalPass openCausal(Model model, RoutingRule rule, int sequences, int maxRows, int context) {
                return causalOpener.open(model, rule, sequences, maxRows, context);
            }

            @Override
            public Kernels calibrationKernels() {
                return calibrationKernels;
            }
        };
    }
}
