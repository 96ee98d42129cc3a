package dev.mod.cli;

import dev.mod.ModException;
import picocli.CommandLine.Option;

/** --threads, shared by the training commands (their results do not depend on it). */
final class Threads {
    @Option(names = "--threads", description = "Threads (default: one per processor; results do not depend on it).")
    Integer threads;

    /** One per processor when not given; more than 4 per processor is refused (the workers spin between stages and would only wait on each other). */
    int resolve() {
        int cores = Runtime.getRuntime().availableProcessors();
        int count = threads == null ? cores : threads;
        if (count < 1 || count > 4 * cores) {
            throw new ModException("--threads must be from 1 to " + 4 * cores + " (4 per processor here), got " + count);
        }
        return count;
    }
}
