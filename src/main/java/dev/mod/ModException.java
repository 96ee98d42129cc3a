package dev.mod;

/**
 * An error the user can act on: bad input, a bad file, a bad configuration.
 * Its message is one line that names the problem; the CLI prints it and exits non-zero.
 */
public final class ModException extends RuntimeException {
    public ModException(String message) {
        super(message);
    }

    public ModException(String message, Throwable cause) {
        super(message, cause);
    }
}
