package dev.mod.cli;

import dev.mod.study.StudyFile;
import dev.mod.study.StudyRow;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StudyCommandTest extends ConsoleTest {
    private static final byte[] PNG = {(byte) 0x89, 'P', 'N', 'G'};

    @TempDir
    Path dir;

    private int study(Path target, String... extra) {
        String[] base = {"study", "--model", "tiny", "--seq", "16,32", "--capacities", "0.25,1", "--repeats", "1",
                "--warmup-seconds", "0", "--devices", "cpu,reference", "--out", target.toString()};
        String[] args = Arrays.copyOf(base, base.length + extra.length);
        System.arraycopy(extra, 0, args, base.length, extra.length);
        return mod(args);
    }

    @Test
    void aStudyWritesItsRowsCsvAndPlotsAndIsReproducible() throws IOException {
        Path a = dir.resolve("a");
        assertEquals(0, study(a), stderr());
        StudyFile first = StudyFile.read(a.resolve("study.json"));
        assertEquals(12, first.rows().size(), "2 devices x 2 lengths x (dense + 2 capacities)");
        assertEquals(13, Files.readAllLines(a.resolve("rows.csv")).size());
        for (String png : List.of("time_vs_capacity.png", "speedup_vs_seq.png", "decode_speedup_vs_seq.png")) {
            assertArrayEquals(PNG, Arrays.copyOf(Files.readAllBytes(a.resolve(png)), 4), png);
        }
        assertNotNull(first.environment().get("cpu"));
        assertNotNull(first.environment().get("git_commit"));
        for (StudyRow r : first.rows()) {
            assertFalse(r.failed(), r.toString());
            assertNotNull(r.decode().medianMs(), r.toString());
            if (r.capacity() != null) {
                assertNotNull(r.routingChecksum());
                assertNotNull(r.speedup());
                assertNotNull(r.decode().speedup());
            }
        }
        // the cpu and reference backends route the same tokens, at prefill and at decode
        assertEquals(checksums(first, "cpu"), checksums(first, "reference"));
        assertEquals(decodeRouting(first, "cpu"), decodeRouting(first, "reference"));

        Path b = dir.resolve("b");
        assertEquals(0, study(b));
        StudyFile second = StudyFile.read(b.resolve("study.json"));
        assertEquals(first.settings(), second.settings());
        assertEquals(first.rows().stream().map(r -> r.key() + " " + r.flops() + " " + r.routingChecksum()).toList(),
                second.rows().stream().map(r -> r.key() + " " + r.flops() + " " + r.routingChecksum()).toList(),
                "same command, same seed: same rows, FLOPs and routing decisions");
        assertEquals(decodeRouting(first, "cpu"), decodeRouting(second, "cpu"));
    }

    /** Routed fraction and KV-cache bytes of each decode row: what the routing decisions of the decode steps determine. */
    private static String decodeRouting(StudyFile study, String device) {
        return study.rows().stream().filter(r -> r.device().equals(device))
                .map(r -> r.seqLen() + ":" + r.capacityLabel() + "=" + r.decode().routedFraction() + "/" + r.decode().kvCacheBytes())
                .collect(Collectors.joining(","));
    }

    private static String checksums(StudyFile study, String device) {
        return study.rows().stream().filter(r -> r.device().equals(device) && r.capacity() != null)
                .map(r -> r.seqLen() + ":" + r.capacityLabel() + "=" + r.routingChecksum()).collect(Collectors.joining(","));
    }

    @Test
    void anInterruptedStudyResumesWithoutRepeatingItsRows() throws IOException {
        Path a = dir.resolve("a");
        assertEquals(0, study(a));
        StudyFile full = StudyFile.read(a.resolve("study.json"));
        // as if interrupted after four rows
        new StudyFile(full.schema(), full.settings(), full.environment(), full.rows().subList(0, 4)).write(a.resolve("study.json"));
        assertEquals(0, study(a, "--resume"), stderr());
        StudyFile resumed = StudyFile.read(a.resolve("study.json"));
        assertEquals(12, resumed.rows().size());
        assertEquals(full.rows().subList(0, 4), resumed.rows().subList(0, 4), "finished rows are kept as they were");
        assertEquals(full.rows().stream().map(StudyRow::key).toList(), resumed.rows().stream().map(StudyRow::key).toList());
    }

    @Test
    void resumingWithOtherSettingsOrOverwritingAStudyIsRefused() {
        Path a = dir.resolve("a");
        assertEquals(0, study(a));
        assertEquals(1, study(a));
        assertTrue(stderr().contains("already holds a study"));
        assertEquals(1, mod("study", "--model", "tiny", "--seq", "16", "--capacities", "0.25,1", "--repeats", "1",
                "--warmup-seconds", "0", "--devices", "cpu,reference", "--out", a.toString(), "--resume"));
        assertTrue(stderr().contains("other settings"), stderr());
        assertEquals(1, mod("study", "--devices", "gpu7", "--out", dir.resolve("c").toString()));
        assertTrue(stderr().contains("unknown device \"gpu7\""));
        assertEquals(1, mod("study", "--model", "tiny", "--seq", "65", "--out", dir.resolve("d").toString()));
        assertTrue(stderr().contains("sequence length 65 is outside [1, max_seq_len = 64]"));
        assertEquals(1, mod("study", "--model", "tiny", "--seq", "16", "--capacities", "0,0.5", "--out", dir.resolve("e").toString()));
        assertTrue(stderr().contains("capacity 0.0 is outside (0, 1]"));
        assertEquals(1, mod("study", "--model", "absent.safetensors", "--out", dir.resolve("f").toString()));
        assertTrue(stderr().contains("no model file absent.safetensors"));
        assertFalse(Files.exists(dir.resolve("d")) || Files.exists(dir.resolve("e")) || Files.exists(dir.resolve("f")),
                "a refused study writes nothing");
        assertEquals(1, study(Path.of("/")));
        assertTrue(stderr().contains("/ is the root of a file system: give the study a folder of its own"), stderr());
        assertFalse(Files.exists(Path.of("/study.json")) || Files.exists(Path.of("/rows.csv")), "nothing written into /");
    }

    @Test
    void aNewStudyNeverReplacesTheUsersFiles() throws IOException {
        Path mine = Files.createDirectories(dir.resolve("mine"));
        Files.writeString(mine.resolve("rows.csv"), "my rows\n");
        assertEquals(1, study(mine));
        assertTrue(stderr().strip().endsWith("already holds rows.csv, which a new study would replace: use another --out"), stderr());
        assertEquals("my rows\n", Files.readString(mine.resolve("rows.csv")));
        assertFalse(Files.exists(mine.resolve("study.json")), "nothing written");
    }

    @Test
    void compareStudiesSideBySide() throws IOException {
        assertEquals(0, study(dir.resolve("one")));
        assertEquals(0, study(dir.resolve("two")));
        Path plots = dir.resolve("cmp");
        assertEquals(0, mod("study", "compare", dir.resolve("one/study.json").toString(),
                dir.resolve("two/study.json").toString(), "--out", plots.toString()));
        String table = stdout();
        assertTrue(table.contains("one") && table.contains("two"), table);
        assertArrayEquals(PNG, Arrays.copyOf(Files.readAllBytes(plots.resolve("time_vs_capacity.png")), 4));
        assertTrue(Files.exists(plots.resolve("decode_speedup_vs_seq.png")));
    }

    @Test
    void aStudyWithoutDecodeRowsGetsNoDecodePlotFromCompare() {
        assertEquals(0, study(dir.resolve("prefill"), "--decode-steps", "0"));
        assertFalse(Files.exists(dir.resolve("prefill/decode_speedup_vs_seq.png")));
        Path plots = dir.resolve("cmp");
        assertEquals(0, mod("study", "compare", dir.resolve("prefill/study.json").toString(), "--out", plots.toString()), stderr());
        assertTrue(Files.exists(plots.resolve("speedup_vs_seq.png")));
        assertFalse(Files.exists(plots.resolve("decode_speedup_vs_seq.png")), "no empty plot");
        assertTrue(stdout().contains("(no decode rows: no decode plot)") && !stdout().contains("decode_speedup_vs_seq.png"), stdout());
    }
}
