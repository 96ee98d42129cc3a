package dev.mod.backend;

import dev.mod.ModException;
import dev.mod.cpu.CpuKernels;
import dev.mod.cpu.CpuTrainingKernels;
import dev.mod.model.DType;
import dev.mod.model.Model;
import dev.mod.plan.CausalPass;
import dev.mod.plan.CausalPlan;
import dev.mod.plan.ForwardPass;
import dev.mod.plan.ForwardPlan;
import dev.mod.plan.Kernels;
import dev.mod.plan.KvCache;
import dev.mod.plan.RoutingRule;
import dev.mod.reference.ReferenceKernels;
import dev.mod.train.TrainingKernels;
import dev.mod.train.TrainingPass;
import dev.mod.train.TrainingPlan;

import java.util.List;
import java.util.function.Supplier;

/** A backend that runs the host plans (ForwardPlan, CausalPlan) on a set of kernels: cpu and reference. */
final class HostBackend implements Backend {
    private final String name;
    private final Device device;
    private final Supplier<Kernels> makeKernels;
    /** The training kernels of each training pass; null where this backend does not train. */
    private final Supplier<TrainingKernels> trainingKernels;
    private Kernels kernels;

    HostBackend(String name, Device device, Supplier<Kernels> makeKernels, Supplier<TrainingKernels> trainingKernels) {
        this.name = name;
        this.device = device;
        this.makeKernels = makeKernels;
        this.trainingKernels = trainingKernels;
    }

    static HostBackend cpu(int threads) {
        return new HostBackend("cpu", new Device("cpu", HostCpu.description(threads)),
                () -> new CpuKernels(threads), () -> new CpuTrainingKernels(threads));
    }

    static HostBackend reference() {
        return new HostBackend("reference", new Device("reference", "plain Java, one thread (the oracle)"),
                ReferenceKernels::new, null);
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public List<Device> devices() {
        return List.of(device);
    }

    @Override
    public ForwardPass open(Model model, int batch, int seqLen) {
        return new ForwardPlan(model, hostKernels(name), batch, seqLen);
    }

    @Override
    public ForwardPass openMeasured(Model model, int batch, int seqLen, String device) {
        checkDevice(device);
        return open(model, batch, seqLen);
    }

    @Override
    public CausalPass openCausal(Model model, RoutingRule rule, int sequences, int maxRows, int context, String device,
                                 DType cacheType) {
        checkDevice(device);
        return new CausalPlan(model, hostKernels(name), rule, sequences, maxRows, context, cacheType);
    }

    @Override
    public DType cacheType(Model model) {
        return KvCache.typeFor(model);
    }

    @Override
    public TrainingPass.Opener training(String device) {
        if (trainingKernels == null) {
            throw new ModException("training runs on the cpu backend, not on " + name);
        }
        return TrainingPlan.opener((s, state) -> trainingKernels.get());
    }

    @Override
    public Kernels hostKernels(String what) {
        if (kernels == null) {
            kernels = makeKernels.get();
        }
        return kernels;
    }

    private void checkDevice(String id) {
        if (id != null && !id.equals(device.id())) {
            throw new IllegalArgumentException("the " + name + " backend has no device " + id);
        }
    }

    @Override
    public void close() {
        if (kernels != null) {
            kernels.close();
        }
    }
}
