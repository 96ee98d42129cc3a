package dev.mod.cli;

import dev.mod.sweep.SweepSpec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SweepCommandTest extends ConsoleTest {
    @TempDir
    Path dir;

    private Path specFile() throws IOException {
        Path text = dir.resolve("text.txt");
        Files.writeString(text, "for (int i = 0; i < n; i++) { sum += a[i] * b[i]; }\n".repeat(400));
        SweepSpec spec = new SweepSpec(text.toString(), 1 << 20, 16, 2, 1, 1, List.of(1e8),
                List.of(new SweepSpec.Size("a", 16, 2, 2, 32), new SweepSpec.Size("b", 24, 2, 2, 48),
                        new SweepSpec.Size("c", 32, 2, 2, 64)),
                0.25, 4, false, 3e-3, Map.of(), 16, 0.1, 0.1, 0.1, 1.0, 0.01, 1.0, 1, 5, null);
        Path file = dir.resolve("my-sweep.json");
        Files.writeString(file, spec.toJson());
        return file;
    }

    @Test
    void sweepsReportsAndResumes() throws IOException {
        Path spec = specFile();
        Path out = dir.resolve("sweep");
        assertEquals(0, mod("sweep", "--spec", spec.toString(), "--out", out.toString()), stderr());
        String table = stdout();
        assertTrue(table.contains("fitted optimum params") && table.contains("1e8 "), table);
        assertTrue(Files.exists(out.resolve("sweep.json")) && Files.exists(out.resolve("isoflop.png")));
        assertEquals(6, Files.list(out.resolve("runs")).count());
        assertEquals(0, mod("sweep", "--spec", spec.toString(), "--out", out.toString()), stderr());
        assertEquals(6, stdout().lines().filter(l -> l.endsWith("(resumed or done)")).count(), stdout());
        assertEquals(0, mod("sweep", "report", out.toString(), "--out", dir.resolve("again").toString()), stderr());
        assertTrue(Files.exists(dir.resolve("again/runs.csv")));
        assertEquals(0, mod("sweep", "time", out.toString(), "--steps", "5", "--rounds", "1", "--threads", "1"), stderr());
        assertEquals(6, stdout().lines().filter(l -> l.startsWith("round 1/1")).count(), stdout());
        assertTrue(Files.exists(out.resolve("step_times.json")));
        assertEquals(0, mod("sweep", "report", out.toString()), stderr());
        assertTrue(stdout().contains("step times of one sitting"), stdout());
        assertEquals(1, mod("sweep", "time", dir.toString()));
        assertEquals("mod: error: " + dir + " is not a sweep folder (no spec.json)", stderr().strip());
    }

    @Test
    void printsAndListsTheBuiltInSpecs() {
        assertEquals(0, mod("sweep", "--print-spec"));
        assertEquals(SweepSpec.defaults(), SweepSpec.fromJson(stdout(), "printed"));
        assertEquals(0, mod("sweep", "--quick", "--list"));
        assertEquals(1 + 4 * 2 * 3 + 4, stdout().lines().count(), stdout());
        assertTrue(stdout().contains("b1e11-d32-l2-dense") && stdout().contains("b3.16e11-d96-l3-mod-stochastic"), stdout());
        assertEquals(0, mod("sweep", "--quick", "--list", "--runs", "b3.16e11-d??-l?-mod,b1e11-d32-l2-dense"));
        assertEquals(List.of("b1e11-d32-l2-dense", "b3.16e11-d32-l2-mod", "b3.16e11-d48-l2-mod", "b3.16e11-d64-l2-mod",
                        "b3.16e11-d96-l3-mod"),
                stdout().lines().skip(1).map(l -> l.split(" +")[0]).toList(), stdout());
    }

    @Test
    void refusals() throws IOException {
        Path spec = specFile();
        assertEquals(1, mod("sweep", "--quick", "--spec", spec.toString()));
        assertEquals("mod: error: --quick, --paper and --spec each choose the spec: give one", stderr().strip());
        assertEquals(1, mod("sweep", "--quick", "--paper"));
        assertEquals("mod: error: --quick, --paper and --spec each choose the spec: give one", stderr().strip());
        Path broken = dir.resolve("broken.json");
        Files.writeString(broken, Files.readString(spec).replace("\"budgets\"", "\"budget\""));
        assertEquals(1, mod("sweep", "--spec", broken.toString(), "--out", dir.resolve("x").toString()));
        assertTrue(stderr().startsWith("mod: error: " + broken + ": not a sweep spec") && stderr().strip().lines().count() == 1, stderr());
        assertFalse(Files.exists(dir.resolve("x")), "nothing written");
        assertEquals(1, mod("sweep", "--spec", spec.toString(), "--shard", "2/2", "--out", dir.resolve("y").toString()));
        assertTrue(stderr().contains("--shard must be i/n with 0 <= i < n, got 2/2"), stderr());
        assertEquals(1, mod("sweep", "--spec", spec.toString(), "--runs", "b1e8-z*", "--out", dir.resolve("z").toString()));
        assertEquals("mod: error: --runs b1e8-z* matches no run of the spec (`mod sweep --list` lists them)", stderr().strip());
        assertFalse(Files.exists(dir.resolve("z")), "nothing written");
        assertEquals(1, mod("sweep", "report", dir.toString()));
        assertTrue(stderr().contains("is not a sweep folder"), stderr());
    }
}
