package dev.mod.cli;

import dev.mod.ModException;

/** The --threads of the training commands. */
final class Threads {
    private Threads() {
    }

    /** One per processor when not given; more than 4 per processor is refused (the workers spin between stages and would only wait on each other). */
    static int resolve(Integer threads) {
        int cores = Runtime.getRuntime().availableProcessors();
        int count = threads == null ? cores : threads;
        if (count < 1 || count > 4 * cores) {
            throw new ModException("--threads must be from 1 to " + 4 * cores + " (4 per processor here), got " + count);
        }
        return count;
    }
}
