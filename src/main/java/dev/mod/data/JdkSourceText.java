package dev.mod.data;

import dev.mod.ModException;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Enumeration;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

/**
 * Text that every machine with a JDK has: the Java sources of java.base in the JDK's lib/src.zip, read in
 * the archive's order, each without the licence comment it opens with (the same 25 lines in every file,
 * which would otherwise be a large share of any sample). The same JDK build gives the same bytes; the
 * JDK's version is in every result file.
 */
public final class JdkSourceText {
    /** What --data and --text take to mean this text. */
    public static final String NAME = "jdk-src";
    private static final String PREFIX = "java.base/java/";

    private JdkSourceText() {
    }

    /** The file without a leading block comment and the blank lines after it. */
    static byte[] withoutLicence(byte[] source) {
        String text = new String(source, java.nio.charset.StandardCharsets.ISO_8859_1);
        if (!text.startsWith("/*")) {
            return source;
        }
        int end = text.indexOf("*/");
        if (end < 0) {
            return source;
        }
        int from = end + 2;
        while (from < text.length() && (text.charAt(from) == '\n' || text.charAt(from) == '\r')) {
            from++;
        }
        return java.util.Arrays.copyOfRange(source, from, source.length);
    }

    public static Path archive() {
        return Path.of(System.getProperty("java.home"), "lib", "src.zip");
    }

    /** The first maxBytes bytes of the concatenated sources (fewer if the archive holds less). */
    public static byte[] read(int maxBytes) {
        Path zip = archive();
        if (!Files.isRegularFile(zip)) {
            throw new ModException("the JDK at " + System.getProperty("java.home") + " has no lib/src.zip to take text from");
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (ZipFile file = new ZipFile(zip.toFile())) {
            Enumeration<? extends ZipEntry> entries = file.entries();
            while (entries.hasMoreElements() && out.size() < maxBytes) {
                ZipEntry e = entries.nextElement();
                if (e.isDirectory() || !e.getName().startsWith(PREFIX) || !e.getName().endsWith(".java")) {
                    continue;
                }
                try (InputStream in = file.getInputStream(e)) {
                    byte[] source = withoutLicence(in.readAllBytes());
                    out.write(source, 0, Math.min(source.length, maxBytes - out.size()));
                }
            }
        } catch (IOException e) {
            throw new ModException("cannot read " + zip + ": " + e.getMessage(), e);
        }
        return out.toByteArray();
    }
}
