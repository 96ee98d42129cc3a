package dev.mod.cli;

import dev.mod.ModException;
import dev.mod.cpu.CpuKernels;
import dev.mod.model.DType;
import dev.mod.model.Model;
import dev.mod.plan.CausalPass;
import dev.mod.plan.CausalPlan;
import dev.mod.plan.RoutingRule;
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
    private static final String TORNADO_CAUSAL_PLAN = "dev.mod.tornado.TornadoCausalPlan";
    private static final String TORNADO_DEVICES = "dev.mod.tornado.TornadoDevices";

    /** Why the tornado backend cannot run in this JVM. */
    static final String NOT_UNDER_TORNADO = "the tornado backend runs under TornadoVM: use scripts/mod-tornado, which "
            + "builds with -Ptornado and launches with the SDK's runtime (TORNADOVM_HOME)";

    /** The ids ("tornado:B:D") of the devices TornadoVM sees; empty when this run is not under TornadoVM. */
    @SuppressWarnings("unchecked")
    static java.util.List<String> tornadoDevices() {
        Object ids = callTornadoDevices("ids");
        return ids == null ? java.util.List.of() : (java.util.List<String>) ids;
    }

    /** One line per TornadoVM device; empty when this run is not under TornadoVM. */
    @SuppressWarnings("unchecked")
    static java.util.List<String> tornadoDeviceLines() {
        Object lines = callTornadoDevices("describe");
        return lines == null ? java.util.List.of() : (java.util.List<String>) lines;
    }

    /**
     * Calls a static method of the TornadoVM device listing; null when TornadoVM is not here, either because
     * the build lacks the tornado backend or because the JVM was not started with TornadoVM's runtime.
     */
    private static Object callTornadoDevices(String method) {
        try {
            return Class.forName(TORNADO_DEVICES).getMethod(method).invoke(null);
        } catch (ClassNotFoundException e) {
            return null;
        } catch (LinkageError e) {
            return failedToStart(e);
        } catch (InvocationTargetException e) {
            if (e.getCause() instanceof LinkageError linkage) {
                return failedToStart(linkage);
            }
            throw new ModException("tornado: cannot list devices: " + e.getCause(), e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Null when TornadoVM's classes are not in this JVM; a one-line error with the cause when TornadoVM failed to start. */
    private static Object failedToStart(LinkageError e) {
        ModException why = tornadoMissing(e);
        if (why.getMessage().equals(NOT_UNDER_TORNADO)) {
            return null;
        }
        throw why;
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

        /** A pass; for tornado on the device "B:D" (null: TornadoVM's default) able to count its transfers (TornadoVM's profiler). */
        ForwardPass open(Model model, int batch, int seqLen, String tornadoDevice) {
            return switch (backend) {
                case cpu, reference -> new ForwardPlan(model, kernels(), batch, seqLen);
                case tornado -> openTornado(model, batch, seqLen, tornadoDevice);
            };
        }

        /**
         * A causal pass (generation, causal routing) for S sequences, chunks of at most maxRows rows and `context` tokens
         * per sequence; for tornado on the device "B:D" (null: tornado-config's or TornadoVM's default).
         */
        CausalPass openCausal(Model model, RoutingRule routing, int sequences, int maxRows, int context, String tornadoDevice) {
            return openCausal(model, routing, sequences, maxRows, context, tornadoDevice, DType.F32);
        }

        /** The same with a KV cache of the given type, F32 or BF16 (tornado keeps F32 only). */
        CausalPass openCausal(Model model, RoutingRule routing, int sequences, int maxRows, int context, String tornadoDevice,
                              DType cacheType) {
            if (backend == tornado && cacheType != DType.F32) {
                throw new ModException("the tornado backend keeps its KV cache in F32; a " + cacheType
                        + " cache runs on the cpu and reference backends");
            }
            return switch (backend) {
                case cpu, reference -> new CausalPlan(model, kernels(), routing, sequences, maxRows, context, cacheType);
                case tornado -> construct(TORNADO_CAUSAL_PLAN, new Class<?>[] {Model.class, RoutingRule.class, int.class, int.class, int.class,
                        boolean.class, String.class}, model, routing, sequences, maxRows, context, false, tornadoDevice);
            };
        }

        /** The same on this backend's default device, with a KV cache of the given type. */
        CausalPass.Opener causal(Model model, RoutingRule routing, DType cacheType) {
            return (sequences, maxRows, context) -> openCausal(model, routing, sequences, maxRows, context, null, cacheType);
        }

        /** The kernels of a host backend, for what runs only stage by stage on the host (calibration). */
        Kernels hostKernels(String what) {
            if (backend == tornado) {
                throw new ModException(what + " runs on the cpu and reference backends");
            }
            return kernels();
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

    /**
     * Why the tornado backend could not start: this JVM lacks TornadoVM's classes (not run under
     * scripts/mod-tornado, or a build without the tornado profile), or TornadoVM is here and failed to start,
     * in which case the first cause it gave is the message.
     */
    static ModException tornadoMissing(Throwable e) {
        if (e instanceof ClassNotFoundException || (e instanceof NoClassDefFoundError && e.getCause() == null
                && String.valueOf(e.getMessage()).startsWith("uk/ac/manchester/tornado/api/"))) {
            return new ModException(NOT_UNDER_TORNADO, e);
        }
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        // A jar built with the tornado backend run on a plain JVM (TornadoVM's API classes absent): not under TornadoVM.
        if (root instanceof ClassNotFoundException && String.valueOf(root.getMessage()).startsWith("uk.ac.manchester.tornado.api.")) {
            return new ModException(NOT_UNDER_TORNADO, e);
        }
        String message = root.getMessage() == null ? "" : ": " + root.getMessage().lines().findFirst().orElse("");
        return new ModException("TornadoVM failed to start: " + root.getClass().getSimpleName() + message, e);
    }

    Instance start() {
        return new Instance(this);
    }

    private static ForwardPass openTornado(Model model, int batch, int seqLen, String device) {
        return construct(TORNADO_PLAN, new Class<?>[] {Model.class, int.class, int.class, boolean.class, String.class},
                model, batch, seqLen, device != null, device);
    }

    /** A TornadoVM plan by its class name: its errors as they are, TornadoVM missing or failing to start as one line. */
    @SuppressWarnings("unchecked")
    private static <T> T construct(String className, Class<?>[] types, Object... arguments) {
        try {
            return (T) Class.forName(className).getConstructor(types).newInstance(arguments);
        } catch (ClassNotFoundException | LinkageError e) {
            throw tornadoMissing(e);
        } catch (InvocationTargetException e) {
            if (e.getCause() instanceof LinkageError linkage) {
                throw tornadoMissing(linkage);
            }
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            throw new ModException("tornado backend: " + e.getCause(), e.getCause());
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException(e);
        }
    }
}
