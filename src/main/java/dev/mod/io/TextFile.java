package dev.mod.io;

import dev.mod.ModException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
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

    /**
     * The text of a file, or of standard input for "-" (read to its end, at most {@link #MAX_BYTES}), as UTF-8 without
     * a leading byte-order mark; `what` names it in errors ("prompt file").
     */
    public static String readFileOrStandardInput(String spec, String what) {
        try {
            if (!spec.equals("-")) {
                return read(Path.of(spec));
            }
            byte[] bytes = System.in.readNBytes((int) MAX_BYTES + 1);
            if (bytes.length > MAX_BYTES) {
                throw new ModException(what + " on standard input is more than the " + MAX_BYTES + " bytes read as text");
            }
            String text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
            return text.startsWith("\uFEFF") ? text.substring(1) : text;
        } catch (CharacterCodingException e) {
            throw new ModException(what + " " + (spec.equals("-") ? "on standard input" : spec) + " is not UTF-8 text", e);
        } catch (IOException e) {
            throw new ModException("cannot read " + what + " " + (spec.equals("-") ? "from standard input" : spec) + ": "
                    + IoErrors.describe(e), e);
        }
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
