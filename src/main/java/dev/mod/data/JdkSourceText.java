package dev.mod.data;

import dev.mod.ModException;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Enumeration;
import java.util.List;
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
    /** The same sources with a tenth held out in whole files (TextData). */
    public static final String FILES_NAME = "jdk-src-files";
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
        return Arrays.copyOfRange(source, from, source.length);
    }

    public static Path archive() {
        return Path.of(System.getProperty("java.home"), "lib", "src.zip");
    }

    /** One source file: its path in the archive and its text without the licence. */
    public record SourceFile(String name, byte[] text) {
        /** The folder it is in: its package. */
        public String folder() {
            return name.substring(0, Math.max(0, name.lastIndexOf('/')));
        }
    }

    /** The first maxBytes bytes of the concatenated sources (fewer if the archive holds less). */
    public static byte[] read(int maxBytes) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (SourceFile source : files(maxBytes)) {
            out.writeBytes(source.text());
        }
        return out.toByteArray();
    }

    /** The sources one by one, in the archive's order, up to maxBytes in all (the last one cut to fit). */
    public static List<SourceFile> files(int maxBytes) {
        Path zip = archive();
        if (!Files.isRegularFile(zip)) {
            throw new ModException("the JDK at " + System.getProperty("java.home") + " has no lib/src.zip to take text from");
        }
        List<SourceFile> files = new ArrayList<>();
        long size = 0;
        try (ZipFile file = new ZipFile(zip.toFile())) {
            Enumeration<? extends ZipEntry> entries = file.entries();
            while (entries.hasMoreElements() && size < maxBytes) {
                ZipEntry e = entries.nextElement();
                if (e.isDirectory() || !e.getName().startsWith(PREFIX) || !e.getName().endsWith(".java")) {
                    continue;
                }
                try (InputStream in = file.getInputStream(e)) {
                    byte[] source = withoutLicence(in.readAllBytes());
                    byte[] kept = Arrays.copyOf(source, (int) Math.min(source.length, maxBytes - size));
                    files.add(new SourceFile(e.getName(), kept));
                    size += kept.length;
                }
            }
        } catch (IOException e) {
            throw new ModException("cannot read " + zip + ": " + e.getMessage(), e);
        }
        return files;
    }
}
