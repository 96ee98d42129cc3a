package dev.mod.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mod.ModException;
import dev.mod.data.TrainingData;
import dev.mod.io.FolderLock;
import dev.mod.io.ModelFile;
import dev.mod.model.MemoryBudget;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelCost;
import dev.mod.model.ModelInit;
import dev.mod.model.Rng;

import java.io.IOException;
import java.io.Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;

/**
 * A training run's loop: batches into the training pass it is handed (TrainingPass), the optimizer's steps, a log line
 * per step, evaluations (Evaluation) and checkpoints into the run's folder (RunFolder). The run is the same numbers
 * whether it ran at once or was resumed from any of its checkpoints.
 */
public final class Trainer {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final TrainSettings s;
    private final TrainingData data;
    private final RunFolder folder;
    private final TrainingPass.Opener passes;

    /** What the progress display shows after a step. */
    public record Progress(long step, double loss, double tokensPerSecond, double[] causalFractions, Double evalLoss) {
    }

    /** A run whose steps run on the given training pass. */
    public Trainer(TrainSettings settings, TrainingData data, Path dir, TrainingPass.Opener passes) {
        this.s = settings;
        this.data = data;
        this.folder = new RunFolder(dir);
        this.passes = passes;
    }

    // a batch too large for the heap is refused before the run writes anything (a JVM out of memory leaves settings behind)
    private void checkMemory(Parameters params) {
        long parameters = params.names().stream().mapToLong(n -> params.get(n).length).sum();
        MemoryBudget.check("a training step of " + s.batch() + " x " + s.seqLen() + " tokens (activations, gradients, packed weights)",
                TrainingPlan.bytesNeeded(s.config(), parameters, s.batch(), s.seqLen()));
    }

    public RunFolder folder() {
        return folder;
    }

    /**
     * Trains from the start, or from the folder's checkpoint; returns the last evaluation's line. The folder is this run's
     * alone while it runs: another run into it is refused (FolderLock).
     */
    public JsonNode run(boolean resume, Consumer<Progress> progress) {
        try (FolderLock lock = FolderLock.acquire(folder.dir(), "training run")) {
            return train(resume, progress);
        }
    }

    /**
     * Random weights from the seed, or those of --init-from's model file (checked against the SHA-256 the settings
     * recorded), with random predictors from the seed where the file has none and the run trains them.
     */
    private Parameters initialWeights(ModelConfig config) {
        Parameters random = Parameters.of(ModelInit.random(config, s.seed(), s.predictorDim()));
        if (s.initFrom() == null) {
            return random;
        }
        Path file = Path.of(s.initFrom().model());
        String sha = ModelFile.sha256(file);
        if (!sha.equals(s.initFrom().sha256())) {
            throw new ModException("--init-from " + file + " has changed since the run was set up (SHA-256 " + sha + ", recorded "
                    + s.initFrom().sha256() + ")");
        }
        try (Model model = ModelFile.load(file)) {
            Model start = model.withConfig(config);
            if (start.predictorDim() != 0 && start.predictorDim() != s.predictorDim()) {
                throw new ModException("--init-from " + file + " has predictors of hidden size " + start.predictorDim()
                        + "; give --predictor-dim " + start.predictorDim());
            }
            Parameters loaded = Parameters.of(start);
            for (String name : random.names()) {
                if (!loaded.has(name)) {
                    loaded.put(name, random.get(name), random.shape(name));
                }
            }
            return loaded;
        }
    }

    private JsonNode train(boolean resume, Consumer<Progress> progress) {
        ModelConfig config = s.config();
        TrainState state;
        Rng rng;
        long start;
        Checkpoint cp = resume ? folder.resume(s) : null;
        if (cp != null) {
            checkMemory(cp.params());
            state = new TrainState(cp.params(), new AdamW(cp.m(), cp.v(), cp.adamStep(), s.effectiveWeightDecay()));
            rng = new Rng(cp.rngState());
            start = cp.step();
        } else {
            if (!resume) {
                folder.checkNew(s);
            }
            Parameters params = initialWeights(config);
            checkMemory(params);
            state = new TrainState(params, new AdamW(params, s.effectiveWeightDecay()));
            rng = new Rng(s.seed() * 0x9E3779B97F4A7C15L + 1);
            start = 0;
            folder.create(s);
        }
        int b = s.batch();
        int t = s.seqLen();
        int[][] input = new int[b][t];
        int[][] target = new int[b][t];
        double flopsPerStep = 3 * b * ModelCost.forwardFlops(config, t);
        JsonNode lastEval = null;
        try (TrainingPass pass = passes.open(s, state); Writer log = folder.openLog()) {
            // where this stretch of the run trains: a run may resume on another backend
            RunFolder.writeLine(log, JSON.createObjectNode().put("started_at_step", start).put("device", pass.device()));
            for (long step = start; step < s.steps(); step++) {
                long begin = System.nanoTime();
                data.batch(rng, input, target);
                double loss = pass.forward(input, target, step);
                if (!Double.isFinite(loss)) {
                    throw diverged("loss is " + loss, step, pass);
                }
                pass.backward();
                double norm = pass.clipGradients(s.clip());
                if (!Double.isFinite(norm)) {
                    throw diverged("gradient norm is " + norm, step, pass);
                }
                double lr = AdamW.learningRate(step, s.lr(), s.warmup(), s.steps(), s.minLrRatio());
                pass.update(lr);
                double seconds = (System.nanoTime() - begin) / 1e9;
                ObjectNode line = JSON.createObjectNode();
                line.put("step", step + 1);
                line.put("loss", loss);
                line.put("cross_entropy", pass.crossEntropy());
                line.put("router_bce", pass.routerLoss());
                line.put("predictor_bce", pass.predictorLoss());
                line.put("lr", lr);
                line.put("grad_norm", norm);
                line.put("tokens_per_s", b * t / seconds);
                line.put("train_flops", flopsPerStep * (step + 1));
                double[] fractions = config.routedLayers().stream().mapToDouble(pass::causalFraction).toArray();
                RunFolder.writeLine(log, line);
                Double evalLoss = null;
                boolean last = step + 1 == s.steps();
                if ((step + 1) % s.evalEvery() == 0 || last) {
                    lastEval = Evaluation.evaluate(pass, s, data, step + 1, flopsPerStep * (step + 1));
                    RunFolder.writeLine(log, (ObjectNode) lastEval);
                    evalLoss = lastEval.get("eval_loss").asDouble();
                }
                if ((step + 1) % s.checkpointEvery() == 0 || last) {
                    TrainState now = pass.state();
                    AdamW adam = now.adam();
                    folder.save(new Checkpoint(s, now.params(), adam.m(), adam.v(), step + 1, adam.step(), rng.state()), config, log);
                }
                progress.accept(new Progress(step + 1, loss, b * t / seconds, fractions, evalLoss));
            }
        } catch (IOException e) {
            throw new ModException("cannot write " + folder.logFile() + ": " + e.getMessage(), e);
        }
        return lastEval;
    }

    private ModException diverged(String what, long step, TrainingPass pass) {
        int layer = pass.firstNonFiniteLayer();
        return new ModException(what + " at step " + (step + 1)
                + (layer >= 0 ? ", first non-finite activations in layer " + layer : ", activations finite up to the head")
                + (Files.exists(folder.checkpointFile()) ? "; the last good checkpoint is kept in " + folder.dir()
                : "; no checkpoint was written yet (a lower --lr, or --checkpoint-every smaller than this step, keeps one)"));
    }
}
