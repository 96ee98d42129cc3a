package dev.mod.cli;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mod.ModException;
import dev.mod.backend.Backend;
import dev.mod.data.ByteTokenizer;
import dev.mod.data.SelectiveCopy;
import dev.mod.data.TextData;
import dev.mod.data.TrainingData;
import dev.mod.io.ModelFile;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.Presets;
import dev.mod.train.TrainPlots;
import dev.mod.train.TrainSettings;
import dev.mod.plan.RoutingRule;
import dev.mod.train.RunFolder;
import dev.mod.train.Trainer;
import me.tongfei.progressbar.ProgressBar;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "train", mixinStandardHelpOptions = true,
        description = {"Train a MoD model (or its dense counterpart, --dense) on byte-level text or a synthetic task, "
                + "on the cpu backend or a TornadoVM device (--backend tornado[:B:D], under scripts/mod-tornado): AdamW, cosine schedule with warm-up, gradient clipping, FP32 master weights, "
                + "the paper's auxiliary router and predictor losses.",
                "Writes to --out: settings.json (how the run was made), log.jsonl, checkpoint.safetensors, "
                        + "model.safetensors (usable by forward, generate, study) and loss.png. --resume goes on from the checkpoint, bit for bit. `mod train-plot` compares runs."})
final class TrainCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    static final class Source {
        @Option(names = "--preset", converter = PresetName.class, required = true, paramLabel = "NAME", description = "A built-in config: tiny, small or bench.")
        String preset;

        @Option(names = "--config", required = true, paramLabel = "FILE.json", description = "A model config (JSON).")
        Path config;

        @Option(names = "--init-from", required = true, paramLabel = "MODEL", description = "Start from this model file's "
                + "weights and config (a model trained or converted before: mod import --mod-capacity) instead of random ones.")
        Path initFrom;
    }

    @Option(names = "--train", defaultValue = "all", paramLabel = "all|routers", description = "With --init-from: what trains: "
            + "all the weights, or only the routers and predictors (the rest frozen; weight decay off) (default: ${DEFAULT-VALUE}).")
    String train;

    @Mixin
    BackendOption backend;

    @Option(names = "--dense", description = "Train the dense counterpart (no routed layers).")
    boolean dense;

    @Option(names = "--capacity", paramLabel = "C", description = "Override the config's capacity.")
    Double capacity;

    @Option(names = "--predictor-dim", defaultValue = "0", paramLabel = "P",
            description = "Train a causal predictor with P hidden units in every routed layer (default: none).")
    int predictorDim;

    @Option(names = "--stochastic-routing", arity = "0..1", fallbackValue = "uniform", paramLabel = "uniform|gaussian",
            description = "A control: route by top-k over random scores drawn for every batch instead of the router's. uniform "
                    + "(the default of the bare option): uniform scores, the router still weights the outputs; gaussian (the "
                    + "paper's control): router weights sampled from a standard normal, which also weight the outputs.")
    String stochasticRouting;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the weights and of the batches (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--data", required = true, paramLabel = "PATH|jdk-src|jdk-src-files|copy|u16:FILE|u32:FILE",
            description = "A text file or folder, jdk-src (the JDK's Java sources; the last tenth held out), jdk-src-files (the same, "
                    + "a tenth held out in whole files from every package), copy (the selective-copy task), or token ids "
                    + "another tokenizer made (u16:FILE, u32:FILE: little-endian, as nanoGPT's train.bin) for an imported model.")
    String data;

    @Option(names = "--max-data-bytes", defaultValue = "8000000", description = "Read at most this much text (default: ${DEFAULT-VALUE}).")
    int maxDataBytes;

    @Option(names = "--steps", required = true, description = "Optimizer steps.")
    int steps;

    @Option(names = "--batch", defaultValue = "8", description = "Sequences per step (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--seq", defaultValue = "128", paramLabel = "T", description = "Tokens per sequence (default: ${DEFAULT-VALUE}).")
    int seqLen;

    @Option(names = "--lr", defaultValue = "1e-3", description = "Peak learning rate (default: ${DEFAULT-VALUE}).")
    double lr;

    @Option(names = "--warmup", defaultValue = "20", description = "Warm-up steps (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--min-lr-ratio", defaultValue = "0.1", description = "Final learning rate / peak (default: ${DEFAULT-VALUE}).")
    double minLrRatio;

    @Option(names = "--weight-decay", defaultValue = "0.1", description = "AdamW weight decay of the matrices (default: ${DEFAULT-VALUE}).")
    double weightDecay;

    @Option(names = "--clip", defaultValue = "1.0", description = "Clip the gradients' global norm to this; 0: no clipping (default: ${DEFAULT-VALUE}).")
    double clip;

    @Option(names = "--aux-router", defaultValue = "0.01",
            description = "Weight of the BCE loss on the router logits with the top-k choices as targets; 0: off (default: ${DEFAULT-VALUE}).")
    double auxRouter;

    @Option(names = "--aux-predictor", defaultValue = "1.0",
            description = "Weight of the predictor's BCE loss (stop-gradient input; needs --predictor-dim) (default: ${DEFAULT-VALUE}).")
    double auxPredictor;

    @Option(names = "--eval-every", defaultValue = "50", description = "Steps between held-out evaluations (default: ${DEFAULT-VALUE}).")
    int evalEvery;

    @Option(names = "--eval-batches", defaultValue = "4", description = "Held-out batches per evaluation (default: ${DEFAULT-VALUE}).")
    int evalBatches;

    @Option(names = "--checkpoint-every", defaultValue = "100", description = "Steps between checkpoints (default: ${DEFAULT-VALUE}).")
    int checkpointEvery;

    @Mixin
    Threads threads;

    @Mixin
    ProgressOption progress;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "The run's folder.")
    Path out;

    @Option(names = "--resume", description = "Go on from the checkpoint in --out (the same settings, or it refuses).")
    boolean resume;

    @Override
    public Integer call() {
        TrainSettings.InitFrom initFrom = null;
        String startTokenizer = Model.BYTE_TOKENS;
        ModelConfig config;
        if (source.initFrom != null) {
            try (Model start = ModelFile.load(source.initFrom)) {
                startTokenizer = start.tokenizer();
                config = start.config();
            }
            initFrom = new TrainSettings.InitFrom(source.initFrom.toString(), ModelFile.sha256(source.initFrom), train,
                    startTokenizer.equals(Model.BYTE_TOKENS) ? null : startTokenizer);
        } else {
            if (!train.equals("all")) {
                throw new ModException("--train " + train + " applies to a run that starts from a model: give --init-from");
            }
            config = source.config != null ? ModelSource.readConfig(source.config) : Presets.get(source.preset);
        }
        if (capacity != null) {
            config = config.withRouting(capacity, config.routedLayers());
        }
        if (dense) {
            config = config.dense();
        }
        // byte data (text, the copy task) need the byte tokenizer; ids (u16:/u32:) are the model's own tokenizer's
        boolean byteData = !data.startsWith("u16:") && !data.startsWith("u32:");
        if (byteData && !startTokenizer.equals(Model.BYTE_TOKENS)) {
            throw new ModException("--data " + data + " is bytes, but --init-from's token ids are those of " + startTokenizer
                    + ": give its text as token ids, --data u16:FILE or u32:FILE");
        }
        if (byteData && config.vocabSize() < ByteTokenizer.VOCAB) {
            throw new ModException("training data are bytes with BOS: the model needs a vocabulary of at least 258, this one has "
                    + config.vocabSize());
        }
        String name = source.preset != null ? source.preset : source.config != null ? source.config.toString() : "init-from:" + source.initFrom;
        RoutingRule routing = switch (stochasticRouting == null ? "none" : stochasticRouting) {
            case "none" -> RoutingRule.TOP_K;
            case "uniform" -> RoutingRule.STOCHASTIC;
            case "gaussian" -> RoutingRule.GAUSSIAN;
            default -> throw new ParameterException(spec.commandLine(),
                    "--stochastic-routing takes uniform or gaussian, not \"" + stochasticRouting + "\"");
        };
        TrainSettings settings = new TrainSettings(name, config.toJsonTree(), predictorDim, routing, seed, data, maxDataBytes, steps, batch, seqLen, lr, warmup,
                minLrRatio, weightDecay, clip, auxRouter, auxPredictor, evalEvery, evalBatches, checkpointEvery, initFrom);
        if ((predictorDim > 0 || stochasticRouting != null) && config.routedLayers().isEmpty()) {
            throw new ModException((stochasticRouting != null ? "--stochastic-routing" : "--predictor-dim") + " needs routed layers; this model has none");
        }
        TrainingData trainingData;
        if (data.equals(SelectiveCopy.NAME)) {
            trainingData = new SelectiveCopy(seqLen, config.capacityTokens(seqLen));
        } else {
            TextData text = TextData.open(data, seqLen, maxDataBytes);
            text.checkVocabulary(config.vocabSize());
            trainingData = text;
        }

        try (Backend runtime = backend.startForTraining(threads.resolve())) {
            Trainer trainer = new Trainer(settings, trainingData, out, runtime.training(backend.device));
            System.out.printf("training %s on %s, %d steps of %d x %d tokens%s%n", Describe.config(config), trainingData.describe(),
                    steps, batch, seqLen, resume ? " (resumed)" : "");
            JsonNode last;
            try (ProgressBar bar = progress.bar("train", steps)) {
                last = trainer.run(resume, p -> {
                    bar.stepTo(p.step());
                    StringBuilder routed = new StringBuilder();
                    for (double f : p.causalFractions()) {
                        routed.append(String.format(Locale.ROOT, " %.2f", f));
                    }
                    bar.setExtraMessage(String.format(Locale.ROOT, "loss %.3f, %.0f tok/s%s", p.loss(), p.tokensPerSecond(),
                            routed.length() == 0 ? "" : ", sigmoid(r)>0.5:" + routed));
                });
            }
            if (last != null) {
                System.out.println("held-out: " + last);
            }
            System.out.printf("wrote %s, %s, %s, %s and %s%n", trainer.folder().settingsFile(), trainer.folder().logFile(),
                    trainer.folder().checkpointFile(), trainer.folder().modelFile(), out.resolve("loss.png"));
        }
        return 0;
    }

    @Command(name = "train-plot", mixinStandardHelpOptions = true,
            description = "Loss curves of training runs in one PNG, against steps or against training FLOPs.")
    static final class Plot implements Callable<Integer> {
        @Parameters(arity = "1..*", paramLabel = "RUN_DIR", description = "Training run folders (with log.jsonl).")
        List<Path> runs;

        @Option(names = "--flops", description = "Against training FLOPs (3 x forward FLOPs per step) instead of steps.")
        boolean flops;

        @Option(names = "--out", required = true, paramLabel = "FILE.png", description = "The plot.")
        Path out;

        @Override
        public Integer call() {
            List<TrainPlots.Run> list = new ArrayList<>();
            List<String> labels = FolderLabels.of(runs, "run");
            for (int i = 0; i < runs.size(); i++) {
                Path run = runs.get(i);
                List<JsonNode> log = RunFolder.readLog(run.resolve("log.jsonl"));
                if (log.isEmpty()) {
                    throw new ModException("no training log in " + run);
                }
                list.add(new TrainPlots.Run(labels.get(i), log));
            }
            TrainPlots.lossCurves(list, flops, out);
            System.out.println("wrote " + out);
            return 0;
        }
    }
}
