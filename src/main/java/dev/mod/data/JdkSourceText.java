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
 * the archive's order. The same JDK build gives the same bytes; the JDK's version is in every result file.
 */
public final class JdkSourceText {
    /** What --data and --text take to mean this text. */
    public static final String NAME = "jdk-src";
    private static final String PREFIX = "java.base/java/";

    private JdkSourceText() {
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
                    out.write(in.readNBytes(maxBytes - out.size()));
                }
            }
        } catch (IOException e) {
            throw new ModException("cannot read " + zip + ": " + e.getMessage(), e);
        }
        return out.toByteArray();
    }
}
