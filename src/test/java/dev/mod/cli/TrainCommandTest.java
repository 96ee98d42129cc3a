package dev.mod.cli;

import dev.mod.io.ModelFile;
import dev.mod.model.Model;
import dev.mod.train.Checkpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** mod train through the CLI: what a run writes, that the model file serves the other commands, and every refusal. */
class TrainCommandTest extends ConsoleTest {
    @TempDir
    Path dir;

    private Path text() throws IOException {
        Path file = dir.resolve("text.txt");
        Files.writeString(file, "All happy families are alike; each unhappy family is unhappy in its own way. ".repeat(30));
        return file;
    }

    /** A quiet 4-step run of the small preset on a small text; extra options replace the defaults given here. */
    private int train(Path out, String... extra) throws IOException {
        java.util.Map<String, String> options = new java.util.LinkedHashMap<>();
        String[] defaults = {"--preset", "small", "--data", text().toString(), "--steps", "4", "--batch", "2", "--seq", "32",
                "--eval-every", "2", "--checkpoint-every", "2", "--out", out.toString()};
        for (int i = 0; i < defaults.length; i += 2) {
            options.put(defaults[i], defaults[i + 1]);
        }
        List<String> flags = new ArrayList<>(List.of("--quiet"));
        for (int i = 0; i < extra.length; i++) {
            if (extra[i].equals("--resume")) {
                flags.add(extra[i]);
            } else {
                options.put(extra[i], extra[++i]);
            }
        }
        List<String> args = new ArrayList<>(List.of("train"));
        options.forEach((k, v) -> {
            args.add(k);
            args.add(v);
        });
        args.addAll(flags);
        return mod(args.toArray(new String[0]));
    }

    /** A new run never replaces the user's files in its folder; a resumed one clears its own interrupted writes. */
    @Test
    void aRunKeepsTheUsersFilesAndClearsItsOwnLeftovers() throws IOException {
        Path out = Files.createDirectories(dir.resolve("mine"));
        Files.writeString(out.resolve("log.jsonl"), "my notes\n");
        assertEquals(1, train(out));
        assertTrue(stderr().strip().endsWith("already holds log.jsonl, which a new run would replace: use another --out"), stderr());
        assertEquals("my notes\n", Files.readString(out.resolve("log.jsonl")));
        int tooMany = 4 * Runtime.getRuntime().availableProcessors() + 1;
        assertEquals(1, train(dir.resolve("threads"), "--threads", Integer.toString(tooMany)));
        assertTrue(stderr().contains("--threads must be from 1 to " + (tooMany - 1)), stderr());
        assertTrue(!Files.exists(dir.resolve("threads")), "nothing written");

        Path run = dir.resolve("run");
        assertEquals(0, train(run), stderr());
        Path leftover = run.resolve(".checkpoint.safetensors4242.tmp");
        Path notOurs = run.resolve(".checkpoint.safetensors-notes.tmp");
        Files.writeString(leftover, "half");
        Files.writeString(notOurs, "mine");
        assertEquals(0, train(run, "--resume"), stderr());
        assertTrue(!Files.exists(leftover), "the interrupted write's temporary file is gone");
        assertTrue(Files.exists(notOurs), "a file that is not one of the run's temporaries is kept");
    }

    /** Under test the output is not a terminal: progress comes as whole lines (no carriage returns), none with --quiet. */
    @Test
    void progressIsPlainLinesOutsideATerminalAndNoneWhenQuiet() throws IOException {
        String[] args = {"train", "--preset", "small", "--data", text().toString(), "--steps", "4", "--batch", "2", "--seq", "32",
                "--out", dir.resolve("piped").toString()};
        assertEquals(0, mod(args), stderr());
        assertFalse(stderr().contains("\r"), stderr());
        assertTrue(stderr().lines().anyMatch(l -> l.startsWith("train 4/4 (100%), 0:00:") && l.contains(" elapsed: loss ")), stderr());
        assertEquals(0, train(dir.resolve("quiet")), stderr());
        assertFalse(stderr().contains("train "), stderr());
        assertTrue(stdout().contains("held-out: "), stdout());
    }

    /**
     * A run from a model file: --train routers changes the routers and trains new predictors and leaves every other
     * weight as it was, bit for bit; --train all changes them all; the file is known again by its SHA-256 on resume.
     */
    @Test
    void aRunFromAModelTrainsTheRoutersOnlyOrEverything() throws IOException {
        Path first = dir.resolve("first");
        assertEquals(0, train(first), stderr());
        Path start = first.resolve("model.safetensors");
        Path routers = dir.resolve("routers");
        String[] args = {"train", "--quiet", "--init-from", start.toString(), "--train", "routers", "--predictor-dim", "8", "--data",
                text().toString(), "--steps", "3", "--batch", "2", "--seq", "32", "--checkpoint-every", "2", "--out", routers.toString()};
        assertEquals(0, mod(args), stderr());
        try (Model before = ModelFile.load(start); Model after = ModelFile.load(routers.resolve("model.safetensors"))) {
            for (String name : before.tensors().keySet()) {
                float[] a = before.tensor(name).toFloatArray();
                float[] b = after.tensor(name).toFloatArray();
                assertEquals(name.contains(".router."), !java.util.Arrays.equals(a, b), name);
            }
            assertEquals(8, after.predictorDim());
        }
        assertTrue(Files.readString(routers.resolve("settings.json")).contains("\"train\":\"routers\""));
        Path all = dir.resolve("all");
        assertEquals(0, mod("train", "--quiet", "--init-from", start.toString(), "--data", text().toString(), "--steps", "2",
                "--batch", "2", "--seq", "32", "--out", all.toString()), stderr());
        try (Model before = ModelFile.load(start); Model after = ModelFile.load(all.resolve("model.safetensors"))) {
            assertTrue(!java.util.Arrays.equals(before.tensor("layers.0.attention.wq.weight").toFloatArray(),
                    after.tensor("layers.0.attention.wq.weight").toFloatArray()));
        }
        refused("--train routers applies to a run that starts from a model: give --init-from", mod("train", "--preset", "small",
                "--train", "routers", "--data", text().toString(), "--steps", "1", "--out", dir.resolve("x").toString()));
        // a run is known by its starting file's SHA-256: resumed after the file changed, it refuses
        Path changing = dir.resolve("changing.safetensors");
        Files.copy(start, changing);
        Path resumed = dir.resolve("resumed");
        String[] resume = {"train", "--quiet", "--init-from", changing.toString(), "--data", text().toString(), "--steps", "2",
                "--batch", "2", "--seq", "32", "--out", resumed.toString()};
        assertEquals(0, mod(resume), stderr());
        Files.copy(all.resolve("model.safetensors"), changing, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        String[] again = java.util.Arrays.copyOf(resume, resume.length + 1);
        again[resume.length] = "--resume";
        refused("init_from", mod(again));
    }

    @Test
    void aRunWritesItsFilesAndItsModelServesTheOtherCommands() throws IOException {
        Path out = dir.resolve("run");
        assertEquals(0, train(out, "--predictor-dim", "8"), stderr());
        for (String file : List.of("log.jsonl", "checkpoint.safetensors", "model.safetensors", "loss.png")) {
            assertTrue(Files.isRegularFile(out.resolve(file)), file);
        }
        try (Model m = ModelFile.load(out.resolve("model.safetensors"))) {
            assertEquals(8, m.predictorDim());
        }
        assertEquals(0, mod("generate", "--model", out.resolve("model.safetensors").toString(), "--prompt", "All happy",
                "--max-tokens", "5", "--routing", "predictor"), stderr());
        assertEquals(0, mod("train-plot", out.toString(), "--flops", "--out", dir.resolve("plot.png").toString()), stderr());
        assertTrue(Files.isRegularFile(dir.resolve("plot.png")));
    }

    private void refused(String message, int code) {
        assertEquals(1, code, stderr());
        assertTrue(stderr().startsWith("mod: error: ") && stderr().contains(message), stderr());
        assertEquals(1, stderr().strip().lines().count(), stderr());
    }

    @Test
    void badDataAndSettingsAreRefused() throws IOException {
        Path out = dir.resolve("bad");
        refused("does not exist", mod("train", "--preset", "small", "--data", dir.resolve("missing").toString(), "--steps", "1",
                "--out", out.toString()));
        Path empty = dir.resolve("empty.txt");
        Files.writeString(empty, "");
        refused("is empty", mod("train", "--preset", "small", "--data", empty.toString(), "--steps", "1", "--out", out.toString()));
        Path small = dir.resolve("small.txt");
        Files.writeString(small, "too little text");
        refused("a sequence of 128 needs at least", mod("train", "--preset", "small", "--data", small.toString(), "--steps", "1",
                "--out", out.toString()));
        refused("--seq 600 is above the model's max_seq_len 512", train(out, "--seq", "600"));
        refused("needs a vocabulary of at least 258", mod("train", "--preset", "tiny", "--data", "copy", "--steps", "1",
                "--out", out.toString()));
        refused("nothing to resume", train(out, "--resume"));
        refused("/ is the root of a file system: give the training run a folder of its own", train(Path.of("/")));
        assertFalse(Files.exists(Path.of("/settings.json")) || Files.exists(Path.of("/log.jsonl")), "nothing written into /");
        assertFalse(Files.exists(out.resolve("checkpoint.safetensors")));
        refused("--stochastic-routing needs routed layers; this model has none",
                mod("train", "--preset", "small", "--dense", "--stochastic-routing", "--data", text().toString(), "--steps", "1",
                        "--out", out.toString()));
    }

    @Test
    void stochasticRoutingIsASettingOfTheRun() throws IOException {
        Path out = dir.resolve("stochastic");
        List<String> args = new ArrayList<>(List.of("train", "--quiet", "--stochastic-routing", "--preset", "small", "--data", text().toString(),
                "--steps", "4", "--batch", "2", "--seq", "32", "--eval-every", "2", "--checkpoint-every", "2", "--out", out.toString()));
        assertEquals(0, mod(args.toArray(new String[0])), stderr());
        assertTrue(Files.readString(out.resolve("settings.json")).contains("\"routing\":\"stochastic\""));
        // resuming without the flag is another run
        args.remove("--stochastic-routing");
        args.add("--resume");
        refused("routing: \"learned\" here, \"stochastic\" in the checkpoint", mod(args.toArray(new String[0])));

        Path gaussian = dir.resolve("gaussian");
        assertEquals(0, mod("train", "--quiet", "--stochastic-routing=gaussian", "--preset", "small", "--data", text().toString(),
                "--steps", "2", "--batch", "2", "--seq", "32", "--out", gaussian.toString()), stderr());
        assertTrue(Files.readString(gaussian.resolve("settings.json")).contains("\"routing\":\"gaussian\""));
        assertEquals(2, mod("train", "--stochastic-routing=normal", "--preset", "small", "--data", text().toString(),
                "--steps", "2", "--out", dir.resolve("normal").toString()), stderr());
        assertTrue(stderr().contains("--stochastic-routing takes uniform or gaussian, not \"normal\""), stderr());
        assertFalse(Files.exists(dir.resolve("normal")));
    }

    @Test
    void resumingRefusesAnotherConfigAndACorruptCheckpoint() throws IOException {
        Path out = dir.resolve("run");
        assertEquals(0, train(out), stderr());
        refused("already holds a training run", train(out));
        refused("another model config", train(out, "--resume", "--capacity", "0.25"));
        refused("other settings: lr: 0.5 here, ", train(out, "--resume", "--lr", "0.5"));
        byte[] good = Files.readAllBytes(out.resolve("checkpoint.safetensors"));
        Files.write(out.resolve("checkpoint.safetensors"), Arrays.copyOf(good, good.length / 2));
        refused("checkpoint.safetensors", train(out, "--resume"));
    }

    @Test
    void aRunThatDivergesBeforeItsFirstCheckpointSaysThereIsNone() throws IOException {
        Path out = dir.resolve("early");
        refused("at step", train(out, "--lr", "1e30", "--warmup", "0", "--checkpoint-every", "100", "--eval-every", "100"));
        assertTrue(stderr().contains("no checkpoint was written yet") && !stderr().contains("is kept"), stderr());
    }

    @Test
    void aDivergingRunStopsAtTheStepAndKeepsTheLastGoodCheckpoint() throws IOException {
        Path out = dir.resolve("diverge");
        refused("at step", train(out, "--lr", "1e30", "--warmup", "0", "--checkpoint-every", "1", "--eval-every", "100"));
        assertTrue(stderr().contains("the last good checkpoint is kept"), stderr());
        Checkpoint kept = Checkpoint.read(out.resolve("checkpoint.safetensors"));
        assertTrue(kept.step() >= 1 && kept.step() < 4, "step " + kept.step());
        for (String name : kept.params().names()) {
            for (float v : kept.params().get(name)) {
                assertTrue(Float.isFinite(v), name);
            }
        }
    }
}
