package dev.mod.cli;

import dev.mod.ModException;
import dev.mod.cpu.CpuKernels;
import dev.mod.model.Model;
import dev.mod.plan.ForwardPass;
import dev.mod.plan.ForwardPlan;
import dev.mod.plan.Kernels;
import dev.mod.reference.ReferenceKernels;

import java.lang.reflect.InvocationTargetException;

/** The backends a command can run a forward pass on (--backend). */
enum Backend {
    /** Vector API kernels on all cores: the default. */
    cpu,
    /** Plain loops with double-precision sums: the oracle. */
    reference,
    /** TornadoVM task graphs (OpenCL, PTX, SPIR-V); needs a build with -Ptornado run under TornadoVM. */
    tornado;

    /** Classes of the TornadoVM backend, compiled only in builds with the tornado profile. */
    private static final String TORNADO_PLAN = "dev.mod.tornado.TornadoForwardPlan";
    private static final String TORNADO_DEVICES = "dev.mod.tornado.TornadoDevices";

    /** The ids ("tornado:B:D") of the devices TornadoVM sees; empty when this run is not under TornadoVM. */
    @SuppressWarnings("unchecked")
    static java.util.List<String> tornadoDevices() {
        try {
            return (java.util.List<String>) Class.forName(TORNADO_DEVICES).getMethod("ids").invoke(null);
        } catch (ClassNotFoundException | NoClassDefFoundError e) {
            return java.util.List.of();
        } catch (ReflectiveOperationException e) {
            throw new ModException("tornado: cannot list devices: " + e.getCause());
        }
    }

    /** One backend in use: its kernels (made once, shared by every pass it opens) and the passes it opens. */
    static final class Instance implements AutoCloseable {
        private final Backend backend;
        private Kernels kernels;

        Instance(Backend backend) {
            this.backend = backend;
        }

        ForwardPass open(Model model, int batch, int seqLen) {
            return open(model, batch, seqLen, null);
        }

        /** A pass; for tornado on the device "B:D" (null: TornadoVM's default) with TornadoVM's profiler on. */
        ForwardPass open(Model model, int batch, int seqLen, String tornadoDevice) {
            return switch (backend) {
                case cpu, reference -> new ForwardPlan(model, kernels(), batch, seqLen);
                case tornado -> openTornado(model, batch, seqLen, tornadoDevice);
            };
        }

        private Kernels kernels() {
            if (kernels == null) {
                kernels = backend == cpu ? new CpuKernels() : new ReferenceKernels();
            }
            return kernels;
        }

        @Override
        public void close() {
            if (kernels != null) {
                kernels.close();
            }
        }
    }

    Instance start() {
        return new Instance(this);
    }

    private static ForwardPass openTornado(Model model, int batch, int seqLen, String device) {
        try {
            return (ForwardPass) Class.forName(TORNADO_PLAN)
                    .getConstructor(Model.class, int.class, int.class, boolean.class, String.class)
                    .newInstance(model, batch, seqLen, device != null, device);
        } catch (ClassNotFoundException | NoClassDefFoundError e) {
            throw new ModException("the tornado backend is not in this build: run through scripts/mod-tornado, which builds "
                    + "with -Ptornado and launches under TornadoVM (TORNADOVM_HOME)");
        } catch (InvocationTargetException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            throw new ModException("tornado backend: " + e.getCause(), e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
    }
}
