package dev.mod.data;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The JDK text's two held-out splits: the last tenth of the bytes, or a tenth in whole files. */
class TextDataTest {
    private static final int BYTES = 600_000;
    private static final int T = 64;

    @Test
    void jdkSrcFilesHoldsOutATenthInWholeFilesFromEveryPackage() {
        // the sweep's 8 MB: the first packages of java.base in the archive's order
        int bytes = 8_000_000;
        List<JdkSourceText.SourceFile> files = JdkSourceText.files(bytes);
        ByteArrayOutputStream training = new ByteArrayOutputStream();
        ByteArrayOutputStream heldOut = new ByteArrayOutputStream();
        Map<String, Integer> filesPerPackage = new HashMap<>();
        Set<String> heldOutPackages = new HashSet<>();
        int heldOutFiles = 0;
        for (JdkSourceText.SourceFile file : files) {
            int n = filesPerPackage.merge(file.folder(), 1, Integer::sum);
            boolean out = n % 10 == 0;
            assertEquals(out, TextData.heldOutFile(n));
            (out ? heldOut : training).writeBytes(file.text());
            heldOutFiles += out ? 1 : 0;
            if (out) {
                heldOutPackages.add(file.folder());
            }
        }
        byte[] held = heldOut.toByteArray();
        TextData data = TextData.open(JdkSourceText.FILES_NAME, T, bytes);
        assertEquals((held.length - 1) / T, data.windows(true), "the held-out part is the held-out files, nothing else");
        int[] input = new int[T];
        int[] target = new int[T];
        for (int w : new int[] {0, data.windows(true) - 1}) {
            data.window(true, w, input, target);
            for (int t = 0; t < T; t++) {
                assertEquals(held[w * T + t] & 0xFF, input[t], "held-out window " + w + " byte " + t);
                assertEquals(held[w * T + t + 1] & 0xFF, target[t]);
            }
        }
        // the training part is the other files: the first training window of all the text starts with the first file
        data.window(false, 0, input, target);
        assertArrayEquals(ByteTokenizer.encode(java.util.Arrays.copyOf(training.toByteArray(), T)), input);
        double share = (double) held.length / (held.length + training.size());
        assertTrue(Math.abs(share - 0.1) < 0.02, "about a tenth of the bytes held out: " + share);
        assertTrue(filesPerPackage.size() >= 10, "the sweep's text spans packages: " + filesPerPackage.keySet());
        assertEquals(filesPerPackage.values().stream().mapToInt(n -> n / 10).sum(), heldOutFiles, "a tenth of each package's files");
        filesPerPackage.forEach((p, n) -> assertTrue(n < 10 || heldOutPackages.contains(p),
                "package " + p + " has " + n + " files and none held out"));
        assertTrue(data.describe().contains(heldOutFiles + " of " + files.size() + " files held out whole"), data.describe());
    }

    @Test
    void jdkSrcIsTheFilesOneAfterAnotherAndHoldsOutItsLastTenth() {
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        JdkSourceText.files(BYTES).forEach(f -> all.writeBytes(f.text()));
        byte[] text = JdkSourceText.read(BYTES);
        assertArrayEquals(all.toByteArray(), text);
        assertEquals(BYTES, text.length, "the archive holds more than the cap");
        TextData data = TextData.open(JdkSourceText.NAME, T, BYTES);
        assertEquals((BYTES / 10 - 1) / T, data.windows(true));
    }
}
