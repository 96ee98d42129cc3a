package dev.mod.backend;

import dev.mod.model.DType;
import dev.mod.model.Model;
import dev.mod.plan.CausalPass;
import dev.mod.plan.ForwardPass;
import dev.mod.plan.Kernels;
import dev.mod.plan.RoutingRule;
import dev.mod.train.TrainingPass;

import java.util.List;

/**
 * One backend in use (opened by {@link Backends#start}): the devices it runs on and the passes it opens there. What it
 * makes once (kernels, a worker pool) is shared by every pass it opens and released by {@link #close()}.
 */
public interface Backend extends AutoCloseable {
    /** Its name as --backend takes it. */
    String name();

    /** The devices it can run on, its default first. */
    List<Device> devices();

    /** A forward pass for B sequences of T tokens on its default device. */
    ForwardPass open(Model model, int batch, int seqLen);

    /** The same on one of {@link #devices()} by id, with its transfers counted where the backend can count them (for studies). */
    ForwardPass openMeasured(Model model, int batch, int seqLen, String device);

    /**
     * A causal pass (generation, causal routing) for S sequences, chunks of at most maxRows rows and `context` tokens
     * per sequence, with a KV cache of the given type, on a device by id (null: the default).
     */
    CausalPass openCausal(Model model, RoutingRule rule, int sequences, int maxRows, int context, String device, DType cacheType);

    /** The KV cache type it keeps for a model unless told otherwise. */
    DType cacheType(Model model);

    /** The training passes of this backend on its default device, for a run's {@code Trainer}; an error where it cannot train. */
    default TrainingPass.Opener training() {
        return training(null);
    }

    /** The training passes of this backend on a device of devices() (null: the default one). */
    TrainingPass.Opener training(String device);

    /** The kernels of a host backend, for what runs only stage by stage on the host (calibration); an error elsewhere. */
    Kernels hostKernels(String what);

    /** Causal passes on the default device with a KV cache of the given type, opened as a generator asks. */
    default CausalPass.Opener causal(Model model, RoutingRule rule, DType cacheType) {
        return (sequences, maxRows, context) -> openCausal(model, rule, sequences, maxRows, context, null, cacheType);
    }

    @Override
    void close();

    /** A device: its id as --devices takes it ("cpu", "tornado:0:0") and a description for listings and results files. */
    record Device(String id, String description) {
    }
}
