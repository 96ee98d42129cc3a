package dev.mod.tornado;

import dev.mod.ModException;
import dev.mod.backend.Backend;
import dev.mod.backend.BackendProvider;
import dev.mod.model.DType;
import dev.mod.model.Model;
import dev.mod.plan.CausalPass;
import dev.mod.plan.ForwardPass;
import dev.mod.plan.Kernels;
import dev.mod.plan.RoutingRule;
import dev.mod.train.TrainingPass;
import dev.mod.train.TrainingPlan;

import java.util.List;

/** The TornadoVM backend: forward and causal passes as task graphs on a TornadoVM device. */
public final class TornadoBackend implements Backend {
    /** Found by {@link java.util.ServiceLoader}; starting it reaches TornadoVM's runtime, so a missing one fails here. */
    public static final class Provider implements BackendProvider {
        @Override
        public String name() {
            return "tornado";
        }

        @Override
        public Backend start() {
            return new TornadoBackend(TornadoDevices.describe());
        }
    }

    private final List<Device> devices;

    private TornadoBackend(List<Device> devices) {
        this.devices = devices;
    }

    @Override
    public String name() {
        return "tornado";
    }

    @Override
    public List<Device> devices() {
        return devices;
    }

    @Override
    public ForwardPass open(Model model, int batch, int seqLen) {
        return new TornadoForwardPlan(model, batch, seqLen, false, null);
    }

    @Override
    public ForwardPass openMeasured(Model model, int batch, int seqLen, String device) {
        return new TornadoForwardPlan(model, batch, seqLen, true, indices(device));
    }

    @Override
    public CausalPass openCausal(Model model, RoutingRule rule, int sequences, int maxRows, int context, String device,
                                 DType cacheType) {
        if (cacheType != DType.F32) {
            throw new ModException("the tornado backend keeps its KV cache in F32; a " + cacheType
                    + " cache runs on the cpu and reference backends");
        }
        return new TornadoCausalPlan(model, rule, sequences, maxRows, context, false, indices(device));
    }

    @Override
    public DType cacheType(Model model) {
        return DType.F32;
    }

    @Override
    public TrainingPass.Opener training(String device) {
        String where = indices(device);
        return TrainingPlan.opener((s, state) -> {
            TornadoTrainingKernels kernels = new TornadoTrainingKernels(where, s.batch() * s.seqLen(), false);
            kernels.requireMemory(TrainingPlan.deviceBytes(s, state.params()));
            return kernels;
        });
    }

    @Override
    public Kernels hostKernels(String what) {
        throw new ModException(what + " runs on the cpu and reference backends");
    }

    /** "B:D" of a device id "tornado:B:D"; null (tornado-config's or TornadoVM's default) for null. */
    private String indices(String device) {
        if (device == null) {
            return null;
        }
        if (devices.stream().noneMatch(d -> d.id().equals(device))) {
            throw new ModException("no TornadoVM device " + device + " in this run (devices: "
                    + String.join(", ", devices.stream().map(Device::id).toList()) + ")");
        }
        return device.substring("tornado:".length());
    }

    @Override
    public void close() {
    }
}
