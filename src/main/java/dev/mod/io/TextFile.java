package dev.mod.io;

import dev.mod.ModException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A text file the user wrote (a config, a sweep spec, a tokens file), read as UTF-8: a regular file of at most
 * {@link #MAX_BYTES}, so that a device (/dev/zero), a pipe (which would block) or a huge file is refused before it is
 * read.
 */
public final class TextFile {
    public static final long MAX_BYTES = 64L << 20;

    private TextFile() {
    }

    /** The file's text without a leading byte-order mark, which editors on some systems add and no parser here expects. */
    public static String read(Path file) throws IOException {
        if (Files.exists(file) && !Files.isRegularFile(file)) {
            throw new ModException(file + " is not a regular file" + (Files.isDirectory(file) ? " but a directory" : ""));
        }
        if (Files.exists(file) && Files.size(file) > MAX_BYTES) {
            throw new ModException(file + " is " + Files.size(file) + " bytes, more than the " + MAX_BYTES + " read as text");
        }
        String text = Files.readString(file);
        return text.startsWith("\uFEFF") ? text.substring(1) : text;
    }
}
