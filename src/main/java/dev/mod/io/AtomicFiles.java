package dev.mod.io;

import dev.mod.ModException;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Set;

/**
 * Writes a file under a temporary name beside the target and renames it into place, so that a failed
 * or interrupted run never leaves a half-written file where a good one was. Only regular files are
 * written: a target that is a directory, a device, a pipe or a symbolic link is refused rather than
 * replaced, and a file that is replaced keeps its permissions.
 */
public final class AtomicFiles {
    /** Writes the whole body of a file to the stream it is given. */
    @FunctionalInterface
    public interface Body {
        void writeTo(OutputStream out) throws IOException;
    }

    private AtomicFiles() {
    }

    /**
     * Refuses an output path that names one of the run's inputs (the same file, also through a link or
     * another spelling of the path): writing it would replace what the run reads.
     */
    public static void refuseInputs(Path output, Path... inputs) {
        for (Path input : inputs) {
            if (input == null || !Files.exists(output) || !Files.exists(input)) {
                continue;
            }
            try {
                if (Files.isSameFile(output, input)) {
                    throw new ModException("--out " + output + " is the run's input " + input + ": write the output to another file");
                }
            } catch (IOException e) {
                throw new ModException("cannot compare " + output + " with " + input + ": " + IoErrors.describe(e), e);
            }
        }
    }

    /**
     * Refuses to start a new run (`what`: "run", "study") in a folder that already holds one of the files it
     * would write: they are the user's, not this run's.
     */
    public static void refuseToReplace(Path dir, List<String> names, String what) {
        for (String name : names) {
            if (Files.exists(dir.resolve(name), LinkOption.NOFOLLOW_LINKS)) {
                throw new ModException(dir + " already holds " + name + ", which a new " + what + " would replace: use another --out");
            }
        }
    }

    /**
     * Deletes what an interrupted write of the target left beside it: files named as write() names its
     * temporaries (".name" + digits + ".tmp"). Only those, so nothing of the user's is touched.
     */
    public static void removeLeftovers(Path target) {
        Path absolute = target.toAbsolutePath().normalize();
        Path dir = absolute.getParent();
        if (dir == null || absolute.getFileName() == null || !Files.isDirectory(dir)) {
            return;
        }
        java.util.regex.Pattern temporary = java.util.regex.Pattern.compile(
                java.util.regex.Pattern.quote("." + absolute.getFileName()) + "[0-9]+\\.tmp");
        try (var files = Files.list(dir)) {
            for (Path p : files.filter(p -> temporary.matcher(p.getFileName().toString()).matches()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException e) {
            throw new ModException("cannot clean up " + dir + ": " + IoErrors.describe(e), e);
        }
    }

    public static void write(Path target, Body body) {
        Path absolute = target.toAbsolutePath().normalize();
        Path dir = absolute.getParent();
        if (dir == null || absolute.getFileName() == null) {
            throw new ModException("cannot write " + target + ": not a file's path");
        }
        Set<PosixFilePermission> keptMode = null;
        if (Files.exists(absolute, LinkOption.NOFOLLOW_LINKS)) {
            if (Files.isSymbolicLink(absolute)) {
                throw new ModException("cannot write " + target + ": it is a symbolic link (name the file it points to)");
            }
            if (!Files.isRegularFile(absolute, LinkOption.NOFOLLOW_LINKS)) {
                throw new ModException("cannot write " + target + ": " + (Files.isDirectory(absolute) ? "it is a directory"
                        : "not a regular file (a device or a pipe)"));
            }
            keptMode = posixMode(absolute);
        }
        Path temp = null;
        try {
            Files.createDirectories(dir);
            temp = Files.createTempFile(dir, "." + absolute.getFileName(), ".tmp");
            if (Files.getFileStore(temp).supportsFileAttributeView("posix")) {
                // createTempFile makes the file private (rw-------); results and models are meant to be shared,
                // and a file that is replaced keeps the mode its owner gave it.
                Files.setPosixFilePermissions(temp, keptMode != null ? keptMode : PosixFilePermissions.fromString("rw-r--r--"));
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

    /** The file's POSIX permissions, or null where the file system has none. */
    private static Set<PosixFilePermission> posixMode(Path file) {
        try {
            return Files.getFileStore(file).supportsFileAttributeView("posix") ? Files.getPosixFilePermissions(file) : null;
        } catch (IOException e) {
            return null;
        }
    }
}
