package dev.mod.backend;

/**
 * A backend that is not always in the build (TornadoVM's), found with {@link java.util.ServiceLoader}: its jar lists
 * the implementation in META-INF/services/dev.mod.backend.BackendProvider. Loading a provider must not touch the
 * backend's own runtime; {@link #start()} does, and a runtime that is missing surfaces there as a {@link LinkageError}.
 */
public interface BackendProvider {
    /** The backend's name as --backend takes it. */
    String name();

    Backend start();
}
