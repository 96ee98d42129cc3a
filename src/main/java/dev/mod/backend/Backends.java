package dev.mod.backend;

import dev.mod.ModException;

import java.util.List;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;

/**
 * Where every backend is opened, by the CLI, the study, the sweep and the benchmarks alike: cpu and reference from
 * this jar, tornado through its {@link BackendProvider} where the build has the tornado backend.
 */
public final class Backends {
    /** The names --backend takes. */
    public static final List<String> NAMES = List.of("cpu", "reference", "tornado");

    /**
     * Why the tornado backend cannot run in this JVM, and what to run instead: a launcher other than scripts/mod (the
     * release archive's bin/mod) says what it offers through the system property mod.tornado.hint.
     */
    public static final String NOT_UNDER_TORNADO = "the tornado backend runs under TornadoVM: " + System.getProperty("mod.tornado.hint",
            "use scripts/mod-tornado, which builds with -Ptornado and launches with the SDK's runtime (TORNADOVM_HOME)");

    private Backends() {
    }

    /** The backend by name, or a one-line error: an unknown name, or tornado where this run cannot have it. */
    public static Backend start(String name) {
        return switch (name) {
            case "cpu" -> cpu(Runtime.getRuntime().availableProcessors());
            case "reference" -> HostBackend.reference();
            default -> provided(name);
        };
    }

    /** The cpu backend on a number of threads. */
    public static Backend cpu(int threads) {
        return HostBackend.cpu(threads);
    }

    /** The devices of the tornado backend; none where this run is not under TornadoVM. */
    public static List<Backend.Device> tornadoDevices() {
        try (Backend tornado = start("tornado")) {
            return tornado.devices();
        } catch (ModException e) {
            if (e.getMessage().equals(NOT_UNDER_TORNADO)) {
                return List.of();
            }
            throw e;
        }
    }

    private static Backend provided(String name) {
        if (!NAMES.contains(name)) {
            throw new ModException("unknown backend \"" + name + "\" (" + String.join(", ", NAMES) + ")");
        }
        try {
            for (BackendProvider provider : ServiceLoader.load(BackendProvider.class)) {
                if (provider.name().equals(name)) {
                    return provider.start();
                }
            }
        } catch (LinkageError e) {
            throw tornadoMissing(e);
        } catch (ServiceConfigurationError e) {
            // a jar whose provider list names a class it does not hold (a build without the backend over one with it)
            if (e.getCause() == null && String.valueOf(e.getMessage()).endsWith(" not found")) {
                throw new ModException(NOT_UNDER_TORNADO, e);
            }
            throw tornadoMissing(e.getCause() == null ? e : e.getCause());
        }
        throw new ModException(NOT_UNDER_TORNADO);
    }

    /**
     * Why the tornado backend could not start: this JVM lacks TornadoVM's classes (not run under
     * scripts/mod-tornado, or a build without the tornado profile), or TornadoVM is here and failed to start,
     * in which case the first cause it gave is the message.
     */
    public static ModException tornadoMissing(Throwable e) {
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
}
