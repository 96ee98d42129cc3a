package dev.mod.data;

import dev.mod.ModException;
import dev.mod.model.Rng;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Training text as token ids: bytes (a file, every regular file under a folder in path order, or the JDK's Java
 * sources), or token ids already made by another tokenizer (u16:FILE or u32:FILE, little-endian unsigned ids one
 * after another, as nanoGPT writes its train.bin), for a model whose vocabulary is not bytes (mod import --from hf).
 * The last tenth is held out for evaluation; training windows start anywhere in the first nine tenths, held-out
 * windows at fixed, evenly spaced places in the last tenth. jdk-src-files holds out whole files instead: the 10th,
 * 20th, ... file of each package (folder) in the archive's (alphabetical) order, moved to the end; so no file is in
 * both parts, a tenth of the files of every package of ten or more is held out, and which ones does not depend on
 * their size (a rule on bytes held out small files three times as often as large ones).
 */
public final class TextData implements TrainingData {
    private final String description;
    private final int[] tokens;
    private final boolean bytes;
    private final int split;
    private final int seqLen;

    private TextData(String description, int[] tokens, boolean bytes, int seqLen) {
        this(description, tokens, tokens.length - tokens.length / 10, bytes, seqLen);
    }

    // held out: tokens[split ..]
    private TextData(String description, int[] tokens, int split, boolean bytes, int seqLen) {
        this.description = description;
        this.tokens = tokens;
        this.bytes = bytes;
        this.seqLen = seqLen;
        this.split = split;
        int needed = seqLen + 1;
        if (split < needed || tokens.length - split < needed) {
            throw new ModException("data: " + description + " has " + tokens.length + " tokens; a sequence of " + seqLen
                    + " needs at least " + 10L * needed + " (a tenth is held out, and each part must hold a sequence)");
        }
    }

    // the JDK's sources, about a tenth of them held out as whole files, at the end
    private static TextData jdkFiles(int seqLen, int maxBytes) {
        ByteArrayOutputStream training = new ByteArrayOutputStream();
        ByteArrayOutputStream heldOut = new ByteArrayOutputStream();
        List<JdkSourceText.SourceFile> files = JdkSourceText.files(maxBytes);
        Map<String, Integer> seen = new HashMap<>(); // files of each folder so far
        int heldOutFiles = 0;
        for (JdkSourceText.SourceFile file : files) {
            if (heldOutFile(seen.merge(file.folder(), 1, Integer::sum))) {
                heldOut.writeBytes(file.text());
                heldOutFiles++;
            } else {
                training.writeBytes(file.text());
            }
        }
        int split = training.size();
        training.writeBytes(heldOut.toByteArray());
        return new TextData("the JDK's Java sources (" + JdkSourceText.archive() + "), " + heldOutFiles + " of " + files.size()
                + " files held out whole", ByteTokenizer.encode(training.toByteArray()), split, true, seqLen);
    }

    /** Whether the n-th file (from 1) of a package is held out: every tenth. */
    static boolean heldOutFile(int n) {
        return n % 10 == 0;
    }

    /** PATH (a file or a folder), jdk-src, or u16:FILE / u32:FILE of token ids; at most maxBytes bytes are read. */
    public static TextData open(String spec, int seqLen, int maxBytes) {
        if (maxBytes < 1) {
            throw new ModException("--max-data-bytes must be at least 1, got " + maxBytes);
        }
        if (spec.equals(JdkSourceText.FILES_NAME)) {
            return jdkFiles(seqLen, maxBytes);
        }
        if (spec.equals(JdkSourceText.NAME)) {
            return new TextData("the JDK's Java sources (" + JdkSourceText.archive() + ")", ByteTokenizer.encode(JdkSourceText.read(maxBytes)),
                    true, seqLen);
        }
        if (spec.startsWith("u16:") || spec.startsWith("u32:")) {
            int width = spec.startsWith("u16:") ? 2 : 4;
            Path path = Path.of(spec.substring(4));
            if (!Files.isRegularFile(path)) {
                throw new ModException("data: " + path + " is not a regular file of token ids");
            }
            byte[] raw = read(path, maxBytes - maxBytes % width);
            if (raw.length % width != 0) {
                throw new ModException("data: " + path + " has " + raw.length + " bytes, not a whole number of " + width * 8 + "-bit ids");
            }
            ByteBuffer buffer = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
            int[] ids = new int[raw.length / width];
            for (int i = 0; i < ids.length; i++) {
                long id = width == 2 ? buffer.getShort() & 0xFFFFL : buffer.getInt() & 0xFFFFFFFFL;
                if (id > Integer.MAX_VALUE) {
                    throw new ModException("data: " + path + ": token id " + id + " at " + i + " is out of range");
                }
                ids[i] = (int) id;
            }
            return new TextData(spec + " (" + width * 8 + "-bit token ids)", ids, false, seqLen);
        }
        Path path = Path.of(spec);
        if (!Files.exists(path)) {
            throw new ModException("data: " + spec + " does not exist");
        }
        return new TextData(spec, ByteTokenizer.encode(read(path, maxBytes)), true, seqLen);
    }

    /** Whether the ids are bytes (mod's byte tokenizer), rather than another tokenizer's ids. */
    public boolean bytes() {
        return bytes;
    }

    /** Refuses ids the model's vocabulary does not have. */
    public void checkVocabulary(int vocabSize) {
        for (int i = 0; i < tokens.length; i++) {
            if (tokens[i] >= vocabSize) {
                throw new ModException("data: " + description + ": token id " + tokens[i] + " at position " + i
                        + " is outside the model's vocabulary of " + vocabSize);
            }
        }
    }

    private static byte[] read(Path path, int maxBytes) {
        try {
            List<Path> files;
            if (Files.isDirectory(path)) {
                try (Stream<Path> walk = Files.walk(path)) {
                    files = walk.filter(Files::isRegularFile).sorted().toList();
                }
            } else if (Files.isRegularFile(path)) {
                files = List.of(path);
            } else {
                // a device would be read forever (/dev/zero), a pipe would block
                throw new ModException("data: " + path + " is neither a regular file nor a folder");
            }
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            for (Path f : files) {
                if (out.size() >= maxBytes) {
                    break;
                }
                try (java.io.InputStream in = Files.newInputStream(f)) {
                    out.write(in.readNBytes(maxBytes - out.size()));
                }
            }
            if (out.size() == 0) {
                throw new ModException("data: " + path + " is empty");
            }
            return out.toByteArray();
        } catch (IOException | UncheckedIOException e) {
            throw new ModException("data: cannot read " + path + ": " + e.getMessage(), e);
        }
    }

    @Override
    public String describe() {
        return description + ", " + tokens.length + (bytes ? " bytes (" : " tokens (") + (tokens.length - split) + " held out)";
    }

    @Override
    public void batch(Rng rng, int[][] input, int[][] target) {
        for (int b = 0; b < input.length; b++) {
            window(rng.nextInt(split - seqLen), input[b], target[b]);
        }
    }

    @Override
    public void heldOut(int i, int[][] input, int[][] target) {
        int windows = (tokens.length - split - 1) / seqLen;
        for (int b = 0; b < input.length; b++) {
            int w = (i * input.length + b) % Math.max(1, windows);
            window(split + w * seqLen, input[b], target[b]);
        }
    }

    /**
     * Where `mod eval` scores a text: the held-out tenth (what training evaluates on and never trains on), or all
     * of it; cut into windows() of T inputs and their next bytes as targets.
     */
    public int windows(boolean heldOutOnly) {
        return ((heldOutOnly ? tokens.length - split : tokens.length) - 1) / seqLen;
    }

    /** Bytes of the part (held-out or all) that no window scores: its tail, shorter than a window. */
    public int unscoredBytes(boolean heldOutOnly) {
        return (heldOutOnly ? tokens.length - split : tokens.length) - 1 - windows(heldOutOnly) * seqLen;
    }

    /** Window w of the part: input[T] bytes and target[T] the bytes that follow each. */
    public void window(boolean heldOutOnly, int w, int[] input, int[] target) {
        if (w < 0 || w >= windows(heldOutOnly)) {
            throw new IndexOutOfBoundsException("window " + w + " of " + windows(heldOutOnly));
        }
        window((heldOutOnly ? split : 0) + w * seqLen, input, target);
    }

    private void window(int start, int[] input, int[] target) {
        for (int t = 0; t < seqLen; t++) {
            input[t] = tokens[start + t];
            target[t] = tokens[start + t + 1];
        }
    }
}
