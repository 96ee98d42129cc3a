package dev.mod.model;

import dev.mod.ModException;

import java.util.Locale;

/** What a command is about to allocate, checked against the JVM's heap before it allocates anything. */
public final class MemoryBudget {
    private MemoryBudget() {
    }

    /** A one-line error when `bytes` of `what` cannot fit in the heap this JVM may grow to. */
    public static void check(String what, long bytes) {
        long max = Runtime.getRuntime().maxMemory();
        if (bytes > max) {
            throw new ModException(String.format(Locale.ROOT, "%s need %.1f GiB, more than the %.1f GiB this JVM may use "
                    + "(give Java more with -Xmx in MOD_JAVA_OPTS, or make the model or batch smaller)", what, bytes / 1073741824.0,
                    max / 1073741824.0));
        }
    }
}
