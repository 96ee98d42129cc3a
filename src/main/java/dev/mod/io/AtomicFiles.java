package dev.mod.io;

import dev.mod.ModException;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * Writes a file under a temporary name beside the target and renames it into place, so that a failed
 * or interrupted run never leaves a half-written file where a good one was.
 */
public final class AtomicFiles {
    /** Writes the whole body of a file to the stream it is given. */
    @FunctionalInterface
    public interface Body {
        void writeTo(OutputStream out) throws IOException;
    }

    private AtomicFiles() {
    }

    public static void write(Path target, Body body) {
        Path absolute = target.toAbsolutePath();
        Path dir = absolute.getParent();
        Path temp = null;
        try {
            if (dir != null) {
                Files.createDirectories(dir);
            }
            temp = Files.createTempFile(dir, "." + absolute.getFileName(), ".tmp");
            if (Files.getFileStore(temp).supportsFileAttributeView("posix")) {
                // createTempFile makes the file private (rw-------); results and models are meant to be shared.
                Files.setPosixFilePermissions(temp, PosixFilePermissions.fromString("rw-r--r--"));
            }
            try (OutputStream out = new BufferedOutputStream(Files.newOutputStream(temp), 1 << 20)) {
                body.writeTo(out);
            }
            try {
                Files.move(temp, absolute, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(temp, absolute, StandardCopyOption.REPLACE_EXISTING);
            }
            temp = null;
        } catch (IOException e) {
            throw new ModException("cannot write " + target + ": " + IoErrors.describe(e), e);
        } finally {
            if (temp != null) {
                try {
                    Files.deleteIfExists(temp);
                } catch (IOException ignored) {
                    // The write already failed; that error is the one to report.
                }
            }
        }
    }
}
