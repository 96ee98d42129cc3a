package dev.mod.sweep;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mod.ModException;
import dev.mod.StrictJson;
import dev.mod.backend.Backend;
import dev.mod.backend.Backends;
import dev.mod.cpu.TrainKernels;
import dev.mod.data.TextData;
import dev.mod.data.TrainingData;
import dev.mod.io.AtomicFiles;
import dev.mod.io.FolderLock;
import dev.mod.io.ModelFile;
import dev.mod.model.DType;
import dev.mod.model.Model;
import dev.mod.plan.CausalPass;
import dev.mod.plan.RoutingRule;
import dev.mod.study.StudyEnvironment;
import dev.mod.train.RunFolder;
import dev.mod.train.Trainer;
import dev.mod.train.TrainingPass;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.PatternSyntaxException;

/**
 * Runs a sweep's runs (or one shard's) into a folder: spec.json, then runs/{name}/ per run, each a `mod train`
 * run folder plus result.json once trained and evaluated. Runs with a result are skipped, a run with a
 * checkpoint resumes from it (bit for bit), so a stopped sweep goes on where it stopped; a folder that holds
 * another spec is refused.
 */
public final class Sweep {
    static final String SPEC_FILE = "spec.json";

    /** Run i belongs to shard index of count when i mod count == index (`--shard index/count`). */
    public record Shard(int index, int count) {
        public Shard {
            if (count < 1 || index < 0 || index >= count) {
                throw new ModException("--shard must be i/n with 0 <= i < n, got " + index + "/" + count);
            }
        }

        public static final Shard ALL = new Shard(0, 1);

        public static Shard parse(String text) {
            String[] parts = text.split("/", -1);
            try {
                if (parts.length == 2) {
                    return new Shard(Integer.parseInt(parts[0].trim()), Integer.parseInt(parts[1].trim()));
                }
            } catch (NumberFormatException e) {
                // the message below
            }
            throw new ModException("--shard must be i/n (for example 0/4), got \"" + text + "\"");
        }

        boolean holds(int run) {
            return run % count == index;
        }
    }

    /**
     * The runs `--runs` names: the JDK's globs over run names (`*` any characters, `?` one), comma-separated; a
     * run is chosen when one of them matches its whole name. It narrows a shard, so that a run keeps its place (and
     * its shard) whatever is chosen.
     */
    public record RunNames(List<String> globs) {
        public static final RunNames ALL = new RunNames(List.of("*"));

        public RunNames {
            globs = List.copyOf(globs);
            if (globs.isEmpty() || globs.stream().anyMatch(String::isBlank)) {
                throw new ModException("--runs needs run names or globs separated by commas, got " + globs);
            }
            globs.forEach(RunNames::matcher);
        }

        public static RunNames parse(String text) {
            return new RunNames(Arrays.stream(text.split(",", -1)).map(String::trim).toList());
        }

        boolean holds(String name) {
            return globs.stream().anyMatch(g -> matches(g, name));
        }

        static boolean matches(String glob, String name) {
            return matcher(glob).matches(Path.of(name));
        }

        private static PathMatcher matcher(String glob) {
            try {
                return FileSystems.getDefault().getPathMatcher("glob:" + glob);
            } catch (PatternSyntaxException e) {
                throw new ModException("--runs " + glob + " is not a glob: " + e.getDescription());
            }
        }
    }

    /** What the sweep reports as it goes. */
    public interface Listener {
        void runStarted(SweepRun run, int number, int of, boolean resumed);

        void step(Trainer.Progress progress);

        void runFinished(SweepRun run, SweepResult result);
    }

    private final SweepSpec spec;
    private final Path dir;
    private final int threads;
    private final TrainingPass.Opener training;

    /** A sweep that trains on the cpu backend with `threads` threads. */
    public Sweep(SweepSpec spec, Path dir, int threads) {
        this(spec, dir, threads, Backends.cpu(threads).training());
    }

    /** A sweep that trains with `training`'s passes; the causal-routing evaluations run on the cpu with `threads` threads. */
    public Sweep(SweepSpec spec, Path dir, int threads, TrainingPass.Opener training) {
        this.spec = spec;
        this.dir = dir;
        this.threads = threads;
        this.training = training;
    }

    /** The runs of the shard that `names` chooses, in the sweep's order; a glob that matches no run is refused. */
    public List<SweepRun> runs(Shard shard, RunNames names) {
        List<SweepRun> all = SweepRun.plan(spec);
        for (String glob : names.globs()) {
            if (all.stream().noneMatch(r -> RunNames.matches(glob, r.name()))) {
                throw new ModException("--runs " + glob + " matches no run of the spec (`mod sweep --list` lists them)");
            }
        }
        List<SweepRun> mine = new ArrayList<>();
        for (int i = 0; i < all.size(); i++) {
            if (shard.holds(i) && names.holds(all.get(i).name())) {
                mine.add(all.get(i));
            }
        }
        return mine;
    }

    /** Trains and evaluates the shard's unfinished runs; returns the results of all its runs. */
    public List<SweepResult> run(Shard shard, Listener listener) {
        return run(shard, RunNames.ALL, listener);
    }

    /** Trains and evaluates the unfinished runs of the shard that `names` chooses; returns the results of all of them. */
    public List<SweepResult> run(Shard shard, RunNames names, Listener listener) {
        List<SweepRun> runs = runs(shard, names); // refuses a spec with runs below min_steps before anything is written
        claimFolder();
        TrainingData data = null;
        List<SweepResult> results = new ArrayList<>();
        for (int i = 0; i < runs.size(); i++) {
            SweepRun run = runs.get(i);
            Path runDir = runDir(run);
            SweepResult done = finished(spec, run, runDir);
            if (done == null) {
                if (data == null) {
                    data = TextData.open(spec.data(), spec.seqLen(), spec.maxDataBytes());
                }
                Trainer trainer = new Trainer(run.settings(spec), data, runDir, training);
                boolean resume = Files.exists(trainer.folder().checkpointFile());
                listener.runStarted(run, i + 1, runs.size(), resume);
                trainer.run(resume, listener::step);
                done = result(run, trainer, data);
                done.write(runDir);
            } else {
                listener.runStarted(run, i + 1, runs.size(), true);
            }
            listener.runFinished(run, done);
            results.add(done);
        }
        return results;
    }

    public Path runDir(SweepRun run) {
        return dir.resolve("runs").resolve(run.name());
    }

    /**
     * The result of the run in runDir, or null while it is unfinished. A finished run counts only if the spec gives it
     * the settings it was trained with: a spec changed in place (a size added to bracket an optimum) keeps its runs,
     * for training and for reports, only where it left them unchanged.
     */
    static SweepResult finished(SweepSpec spec, SweepRun run, Path runDir) {
        SweepResult done = SweepResult.read(runDir);
        if (done != null) {
            String difference = run.settings(spec).firstDifference(new RunFolder(runDir).settings(), "in the spec", "in the run");
            if (difference != null) {
                throw new ModException(runDir + " was trained with other settings than the spec gives it (" + difference
                        + "); a changed spec needs another --out");
            }
        }
        return done;
    }

    /** Writes spec.json, or refuses a folder whose spec.json is another spec. */
    private void claimFolder() {
        FolderLock.requireOwnFolder(dir, "sweep");
        Path file = dir.resolve(SPEC_FILE);
        if (Files.exists(file)) {
            SweepSpec held = readSpec(dir);
            String difference = StrictJson.firstDifference(spec.toJsonTree(), held.toJsonTree(), "given", "in the folder");
            if (difference != null) {
                throw new ModException(dir + " holds a sweep of another spec (" + difference
                        + "); a changed spec needs another --out");
            }
            return;
        }
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new ModException("cannot create " + dir + ": " + e.getMessage(), e);
        }
        AtomicFiles.write(file, out -> out.write(spec.toJson().getBytes(StandardCharsets.UTF_8)));
    }

    /** The spec.json of a sweep folder. */
    public static SweepSpec readSpec(Path dir) {
        Path file = dir.resolve(SPEC_FILE);
        if (!Files.isRegularFile(file)) {
            throw new ModException(dir + " is not a sweep folder (no " + SPEC_FILE + ")");
        }
        try {
            return SweepSpec.fromJson(Files.readString(file, StandardCharsets.UTF_8), file.toString());
        } catch (IOException e) {
            throw new ModException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    // where the run trained, as its log's stretches say ("cpu, 2 threads"; several, joined, when it resumed elsewhere)
    private static String devices(List<JsonNode> log) {
        return String.join(" + ", log.stream().filter(l -> l.has("device")).map(l -> l.get("device").asText()).distinct().toList());
    }

    private SweepResult result(SweepRun run, Trainer trainer, TrainingData data) {
        List<JsonNode> log = RunFolder.readLog(trainer.folder().logFile());
        List<JsonNode> steps = log.stream().filter(l -> l.has("tokens_per_s")).toList();
        JsonNode eval = log.stream().filter(l -> l.has("eval_loss")).reduce((a, b) -> b)
                .orElseThrow(() -> new ModException(trainer.folder().logFile() + ": no held-out evaluation in the log"));
        double[] stepSeconds = steps.stream().mapToDouble(l -> spec.batch() * spec.seqLen() / l.get("tokens_per_s").asDouble())
                .sorted().toArray();
        double median = stepSeconds.length == 0 ? Double.NaN : stepSeconds[stepSeconds.length / 2];
        double total = 0;
        for (double s : stepSeconds) {
            total += s;
        }
        Double routerLoss = null;
        Double predictorLoss = null;
        Double routerFraction = null;
        Double predictorFraction = null;
        // a model with experts routes causally only by calibrated thresholds, which a sweep's run does not set
        if (!run.dense() && run.routing() instanceof RoutingRule.TopK && !run.experts()) {
            try (Model model = ModelFile.load(trainer.folder().modelFile()); Backend cpu = Backends.cpu(threads)) {
                double[] router = causalLoss(model, RoutingRule.ROUTER, data, cpu);
                routerLoss = router[0];
                routerFraction = router[1];
                if (model.predictorDim() > 0) {
                    double[] predictor = causalLoss(model, RoutingRule.PREDICTOR, data, cpu);
                    predictorLoss = predictor[0];
                    predictorFraction = predictor[1];
                }
            }
        }
        return new SweepResult(run.name(), run.variant(), run.budget(), run.size().name(), run.config().dim(),
                run.config().nLayers(), run.dense() ? null : run.config().capacity(), run.config().routedLayers(),
                run.dense() ? "none" : run.routing().settingsName(),
                run.params(), run.steps(), run.lr(), run.trainingFlopsPerStep(spec) * run.steps(),
                run.forwardFlops(spec.seqLen()), eval.get("eval_loss").asDouble(), routerLoss, predictorLoss,
                routerFraction, predictorFraction, meanOf(eval.get("router_agreement")), meanOf(eval.get("predictor_agreement")),
                median * 1e3, spec.batch() * spec.seqLen() / median, total, threads, StudyEnvironment.cpuModel(),
                devices(log));
    }

    /**
     * {loss, routed fraction} under a causal rule over the spec's held-out windows: each batch of windows is one
     * chunk of a causal plan (every window its own sequence), its logits against the next bytes; the routed
     * fraction is the mean over routed layers of the tokens each processed.
     */
    static double[] causalLoss(Model model, RoutingRule routing, TrainingData data, Backend backend, int batch,
                               int seqLen, int evalBatches) {
        int[][] input = new int[batch][seqLen];
        int[][] target = new int[batch][seqLen];
        int rows = batch * seqLen;
        int[] seq = new int[rows];
        int[] tok = new int[rows];
        int[] next = new int[rows];
        for (int r = 0; r < rows; r++) {
            seq[r] = r / seqLen;
        }
        double loss = 0;
        try (CausalPass plan = backend.openCausal(model, routing, batch, rows, seqLen, null, DType.F32)) {
            for (int i = 0; i < evalBatches; i++) {
                data.heldOut(i, input, target);
                for (int b = 0; b < batch; b++) {
                    plan.truncate(b, 0);
                }
                for (int b = 0; b < batch; b++) {
                    for (int t = 0; t < seqLen; t++) {
                        tok[b * seqLen + t] = input[b][t];
                        next[b * seqLen + t] = target[b][t];
                    }
                }
                plan.run(seq, tok, rows);
                // the trainer's own loss, so that top-k and causal losses are the same arithmetic (logits are the plan's
                // scratch, overwritten by the next chunk anyway)
                loss += TrainKernels.crossEntropy(plan.logits(), next, rows, model.config().vocabSize());
            }
            double fraction = 0;
            List<Integer> routed = model.config().routedLayers();
            for (int layer : routed) {
                fraction += plan.routedFraction(layer);
            }
            return new double[] {loss / evalBatches, fraction / routed.size()};
        }
    }

    private double[] causalLoss(Model model, RoutingRule routing, TrainingData data, Backend backend) {
        return causalLoss(model, routing, data, backend, spec.batch(), spec.seqLen(), spec.evalBatches());
    }

    private static Double meanOf(JsonNode perLayer) {
        if (perLayer == null || perLayer.isEmpty()) {
            return null;
        }
        double sum = 0;
        for (JsonNode v : perLayer) {
            sum += v.asDouble();
        }
        return sum / perLayer.size();
    }
}
