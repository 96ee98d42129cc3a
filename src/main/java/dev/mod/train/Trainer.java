package dev.mod.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mod.ModException;
import dev.mod.data.Rng;
import dev.mod.data.TrainingData;
import dev.mod.io.AtomicFiles;
import dev.mod.io.ModelFile;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelCost;
import dev.mod.model.ModelInit;

import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * A training run in a folder: log.jsonl (a line per step, and one per evaluation), checkpoint.safetensors
 * (weights, optimizer, step, data generator), model.safetensors (the model file, for forward, generate
 * and study) and loss.png. The run is the same numbers whether it ran at once or was resumed from any of
 * its checkpoints.
 */
public final class Trainer {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final TrainSettings s;
    private final TrainingData data;
    private final Path dir;
    private final int threads;

    /** What the progress display shows after a step. */
    public record Progress(long step, double loss, double tokensPerSecond, double[] causalFractions, Double evalLoss) {
    }

    public Trainer(TrainSettings settings, TrainingData data, Path dir, int threads) {
        this.s = settings;
        this.data = data;
        this.dir = dir;
        this.threads = threads;
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

    /** Every file a run writes into its folder. */
    private List<Path> runFiles() {
        return List.of(checkpointFile(), modelFile(), logFile(), settingsFile(), dir.resolve("loss.png"));
    }

    /** Trains from the start, or from the folder's checkpoint; returns the last evaluation's line. */
    public JsonNode run(boolean resume, Consumer<Progress> progress) {
        // An interrupted run may have left a half-written file under its temporary name.
        runFiles().forEach(AtomicFiles::removeLeftovers);
        ModelConfig config = s.config();
        Parameters params;
        AdamW adam;
        Rng rng;
        long start;
        if (resume) {
            Checkpoint cp = Checkpoint.read(checkpointFile());
            if (!cp.settings().config().equals(config)) {
                throw new ModException("the checkpoint in " + dir + " is of another model config: " + cp.settings().modelConfig());
            }
            if (!cp.settings().equals(s)) {
                throw new ModException("the checkpoint in " + dir + " was made with other settings: " + s.firstDifference(cp.settings()));
            }
            params = cp.params();
            params.model(config).close(); // refuses weights that do not fit the config
            adam = new AdamW(cp.m(), cp.v(), cp.adamStep(), s.weightDecay());
            rng = new Rng(cp.rngState());
            start = cp.step();
            keepLogUpTo(start);
        } else {
            if (Files.exists(checkpointFile())) {
                throw new ModException(dir + " already holds a training run: use --resume to go on with it, or another --out");
            }
            AtomicFiles.refuseToReplace(dir, runFiles().stream().map(f -> f.getFileName().toString()).toList(), "run");
            params = Parameters.of(ModelInit.random(config, s.seed(), s.predictorDim()));
            adam = new AdamW(params, s.weightDecay());
            rng = new Rng(s.seed() * 0x9E3779B97F4A7C15L + 1);
            start = 0;
            try {
                Files.createDirectories(dir);
                Files.deleteIfExists(logFile());
            } catch (IOException e) {
                throw new ModException("cannot create " + dir + ": " + e.getMessage(), e);
            }
            AtomicFiles.write(settingsFile(), out -> out.write(s.toJson().getBytes(StandardCharsets.UTF_8)));
        }
        Parameters grads = params.zerosLike();
        int b = s.batch();
        int t = s.seqLen();
        int[][] input = new int[b][t];
        int[][] target = new int[b][t];
        double flopsPerStep = 3 * b * ModelCost.forwardFlops(config, t);
        JsonNode lastEval = null;
        try (TrainingPlan plan = new TrainingPlan(config, params, grads,
                new TrainingPlan.AuxWeights(s.auxRouter(), s.auxPredictor()), s.routing(), b, t, threads);
             Writer log = Files.newBufferedWriter(logFile(), StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                     StandardOpenOption.APPEND)) {
            for (long step = start; step < s.steps(); step++) {
                long begin = System.nanoTime();
                data.batch(rng, input, target);
                double loss = plan.forward(input, target, step);
                if (!Double.isFinite(loss)) {
                    throw diverged("loss is " + loss, step, plan);
                }
                plan.backward();
                double norm = adam.clip(plan.pool(), params, grads, s.clip());
                if (!Double.isFinite(norm)) {
                    throw diverged("gradient norm is " + norm, step, plan);
                }
                double lr = AdamW.learningRate(step, s.lr(), s.warmup(), s.steps(), s.minLrRatio());
                adam.update(plan.pool(), params, grads, lr);
                plan.weightsChanged();
                double seconds = (System.nanoTime() - begin) / 1e9;
                ObjectNode line = JSON.createObjectNode();
                line.put("step", step + 1);
                line.put("loss", loss);
                line.put("cross_entropy", plan.crossEntropy());
                line.put("router_bce", plan.routerLoss());
                line.put("predictor_bce", plan.predictorLoss());
                line.put("lr", lr);
                line.put("grad_norm", norm);
                line.put("tokens_per_s", b * t / seconds);
                line.put("train_flops", flopsPerStep * (step + 1));
                double[] fractions = causalFractions(plan, config);
                writeLine(log, line);
                Double evalLoss = null;
                boolean last = step + 1 == s.steps();
                if ((step + 1) % s.evalEvery() == 0 || last) {
                    lastEval = evaluate(plan, config, step + 1, flopsPerStep * (step + 1));
                    writeLine(log, (ObjectNode) lastEval);
                    evalLoss = lastEval.get("eval_loss").asDouble();
                }
                if ((step + 1) % s.checkpointEvery() == 0 || last) {
                    log.flush();
                    new Checkpoint(s, params, adam.m(), adam.v(), step + 1, adam.step(), rng.state()).write(checkpointFile());
                    ModelFile.save(params.model(config), modelFile());
                    TrainPlots.lossCurves(List.of(new TrainPlots.Run(dir.getFileName().toString(), readLog(logFile()))),
                            false, dir.resolve("loss.png"));
                }
                progress.accept(new Progress(step + 1, loss, b * t / seconds, fractions, evalLoss));
            }
        } catch (IOException e) {
            throw new ModException("cannot write " + logFile() + ": " + e.getMessage(), e);
        }
        return lastEval;
    }

    private ModException diverged(String what, long step, TrainingPlan plan) {
        int layer = plan.firstNonFiniteLayer();
        return new ModException(what + " at step " + (step + 1)
                + (layer >= 0 ? ", first non-finite activations in layer " + layer : ", activations finite up to the head")
                + (Files.exists(checkpointFile()) ? "; the last good checkpoint is kept in " + dir
                : "; no checkpoint was written yet (a lower --lr, or --checkpoint-every smaller than this step, keeps one)"));
    }

    private static double[] causalFractions(TrainingPlan plan, ModelConfig config) {
        return config.routedLayers().stream().mapToDouble(plan::causalFraction).toArray();
    }

    /**
     * Mean cross-entropy over the held-out batches, each routed layer's causal agreement with top-k (router
     * and predictor), and for tasks with a known answer the answer accuracy and the routers' precision on
     * the tokens that matter (against chance: the share of such tokens).
     */
    private JsonNode evaluate(TrainingPlan plan, ModelConfig config, long step, double flops) {
        int b = s.batch();
        int t = s.seqLen();
        int[][] input = new int[b][t];
        int[][] target = new int[b][t];
        double loss = 0;
        List<Integer> routed = config.routedLayers();
        double[] router = new double[routed.size()];
        double[] predictor = new double[routed.size()];
        double[] precision = new double[routed.size()];
        long importantTokens = 0;
        long answers = 0;
        long correct = 0;
        boolean[] answerMask = data.answers();
        for (int i = 0; i < s.evalBatches(); i++) {
            data.heldOut(i, input, target);
            plan.forward(input, target, -1 - i); // negative draws: never a training step's
            loss += plan.crossEntropy();
            boolean[][] important = data.important(i, b, t);
            for (int j = 0; j < routed.size(); j++) {
                router[j] += plan.agreement(routed.get(j), false);
                predictor[j] += plan.agreement(routed.get(j), true);
                if (important != null) {
                    int[] sel = plan.selected(routed.get(j));
                    int k = sel.length / b;
                    int hits = 0;
                    for (int row = 0; row < b; row++) {
                        for (int q = 0; q < k; q++) {
                            hits += important[row][sel[row * k + q]] ? 1 : 0;
                        }
                    }
                    precision[j] += (double) hits / sel.length;
                }
            }
            if (important != null) {
                for (boolean[] row : important) {
                    for (boolean mark : row) {
                        importantTokens += mark ? 1 : 0;
                    }
                }
            }
            if (answerMask != null) {
                for (int row = 0; row < b; row++) {
                    for (int pos = 0; pos < t; pos++) {
                        if (answerMask[pos]) {
                            answers++;
                            correct += plan.argmax(row * t + pos) == target[row][pos] ? 1 : 0;
                        }
                    }
                }
            }
        }
        int n = s.evalBatches();
        ObjectNode line = JSON.createObjectNode();
        line.put("step", step);
        line.put("eval_loss", loss / n);
        line.put("train_flops", flops);
        if (!routed.isEmpty()) {
            ObjectNode r = line.putObject("router_agreement");
            ObjectNode p = plan.predictorDim() > 0 ? line.putObject("predictor_agreement") : null;
            for (int j = 0; j < routed.size(); j++) {
                r.put(routed.get(j).toString(), router[j] / n);
                if (p != null) {
                    p.put(routed.get(j).toString(), predictor[j] / n);
                }
            }
        }
        if (answerMask != null) {
            line.put("answer_accuracy", (double) correct / answers);
        }
        if (importantTokens > 0 && !routed.isEmpty()) {
            ObjectNode pr = line.putObject("router_precision");
            for (int j = 0; j < routed.size(); j++) {
                pr.put(routed.get(j).toString(), precision[j] / n);
            }
            line.put("router_precision_chance", (double) importantTokens / ((long) n * b * t));
        }
        return line;
    }

    private static void writeLine(Writer log, ObjectNode line) throws IOException {
        log.write(JSON.writeValueAsString(line));
        log.write('\n');
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
