package dev.mod.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mod.ModException;
import dev.mod.io.AtomicFiles;
import dev.mod.io.ModelFile;
import dev.mod.model.ModelConfig;

import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * A training run's folder and what it writes there: settings.json (how to make the run again), log.jsonl (a line per
 * step, and one per evaluation), checkpoint.safetensors (weights, optimizer, step, data generator), model.safetensors
 * (the model file, for forward, generate and study) and loss.png.
 */
public final class RunFolder {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path dir;

    public RunFolder(Path dir) {
        this.dir = dir;
    }

    public Path dir() {
        return dir;
    }

    public Path checkpointFile() {
        return dir.resolve("checkpoint.safetensors");
    }

    public Path modelFile() {
        return dir.resolve("model.safetensors");
    }

    public Path logFile() {
        return dir.resolve("log.jsonl");
    }

    /** The run's settings (model config, data, optimizer, seed), written at its start: how to make it again. */
    public Path settingsFile() {
        return dir.resolve("settings.json");
    }

    public Path lossPlot() {
        return dir.resolve("loss.png");
    }

    /** The settings the run was started with, as its settings.json holds them. */
    public TrainSettings settings() {
        if (!Files.isRegularFile(settingsFile())) {
            throw new ModException(dir + " holds no settings.json");
        }
        try {
            return TrainSettings.fromJson(Files.readString(settingsFile(), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new ModException("cannot read " + settingsFile() + ": " + e.getMessage(), e);
        }
    }

    /** Every file a run writes into its folder. */
    List<Path> files() {
        return List.of(checkpointFile(), modelFile(), logFile(), settingsFile(), lossPlot());
    }

    /**
     * Before a new run: refuses a folder that holds a run or files a run would replace. The files of this very run (its
     * settings) killed before its first checkpoint are cleared instead, so that it starts again.
     */
    void checkNew(TrainSettings s) {
        files().forEach(AtomicFiles::removeLeftovers);
        if (Files.exists(checkpointFile())) {
            throw new ModException(dir + " already holds a training run: use --resume to go on with it, or another --out");
        }
        if (startedBefore(s)) {
            clear();
        }
        AtomicFiles.refuseToReplace(dir, files().stream().map(f -> f.getFileName().toString()).toList(), "run");
    }

    // this run's settings.json without a checkpoint: the run was stopped before its first checkpoint
    private boolean startedBefore(TrainSettings s) {
        if (!Files.isRegularFile(settingsFile()) || Files.exists(checkpointFile())) {
            return false;
        }
        try {
            return settings().equals(s);
        } catch (ModException e) {
            return false;
        }
    }

    private void clear() {
        try {
            for (Path f : files()) {
                Files.deleteIfExists(f);
            }
        } catch (IOException e) {
            throw new ModException("cannot clear " + dir + ": " + e.getMessage(), e);
        }
    }

    /** A new run's folder, with its settings and an empty log. */
    void create(TrainSettings s) {
        try {
            Files.createDirectories(dir);
            Files.deleteIfExists(logFile());
        } catch (IOException e) {
            throw new ModException("cannot create " + dir + ": " + e.getMessage(), e);
        }
        AtomicFiles.write(settingsFile(), out -> out.write(s.toJson().getBytes(StandardCharsets.UTF_8)));
    }

    /**
     * A resumed run: its checkpoint, checked against the settings, and the log as it was at the checkpoint; null when this
     * run was stopped before its first checkpoint (it starts again from step 0, its files cleared).
     */
    Checkpoint resume(TrainSettings s) {
        // An interrupted run may have left a half-written file under its temporary name.
        files().forEach(AtomicFiles::removeLeftovers);
        if (startedBefore(s)) {
            clear();
            return null;
        }
        Checkpoint cp = Checkpoint.read(checkpointFile());
        if (!cp.settings().config().equals(s.config())) {
            throw new ModException("the checkpoint in " + dir + " is of another model config: " + cp.settings().modelConfig());
        }
        if (!cp.settings().equals(s)) {
            throw new ModException("the checkpoint in " + dir + " was made with other settings: "
                    + s.firstDifference(cp.settings(), "here", "in the checkpoint"));
        }
        cp.params().model(s.config()).close(); // refuses weights that do not fit the config
        keepLogUpTo(cp.step());
        return cp;
    }

    /** The log, opened for appending lines. */
    Writer openLog() throws IOException {
        return Files.newBufferedWriter(logFile(), StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    static void writeLine(Writer log, ObjectNode line) throws IOException {
        log.write(JSON.writeValueAsString(line));
        log.write('\n');
    }

    /** The checkpoint after `step` steps, the model file and the loss plot (the log flushed first). */
    void save(Checkpoint checkpoint, ModelConfig config, Writer log) throws IOException {
        log.flush();
        checkpoint.write(checkpointFile());
        ModelFile.save(checkpoint.params().model(config, checkpoint.settings().tokenizer()), modelFile());
        TrainPlots.lossCurves(List.of(new TrainPlots.Run(dir.getFileName().toString(), readLog(logFile()))), false, lossPlot());
    }

    /** The log's lines; a line cut short by a crash is left out. */
    public static List<JsonNode> readLog(Path file) {
        List<JsonNode> lines = new ArrayList<>();
        if (!Files.exists(file)) {
            return lines;
        }
        try {
            for (String text : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                try {
                    lines.add(JSON.readTree(text));
                } catch (IOException partial) {
                    // the tail of a run that was killed mid-write
                }
            }
        } catch (IOException e) {
            throw new ModException("cannot read " + file + ": " + e.getMessage(), e);
        }
        return lines;
    }

    /** On resume: the log as it was at the checkpoint (lines of later steps belong to the run being redone). */
    private void keepLogUpTo(long step) {
        List<JsonNode> kept = readLog(logFile()).stream().filter(l -> l.path("step").asLong() <= step).toList();
        AtomicFiles.write(logFile(), out -> {
            for (JsonNode line : kept) {
                out.write((JSON.writeValueAsString(line) + "\n").getBytes(StandardCharsets.UTF_8));
            }
        });
    }
}
