package dev.mod.io;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** A text file the user wrote (a config, a tokens file), read as UTF-8. */
public final class TextFile {
    private TextFile() {
    }

    /** The file's text without a leading byte-order mark, which editors on some systems add and no parser here expects. */
    public static String read(Path file) throws IOException {
        String text = Files.readString(file);
        return text.startsWith("\uFEFF") ? text.substring(1) : text;
    }
}
