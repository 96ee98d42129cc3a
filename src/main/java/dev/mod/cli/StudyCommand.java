package dev.mod.cli;

import dev.mod.ModException;
import dev.mod.backend.Backend;
import dev.mod.backend.Backends;
import dev.mod.io.AtomicFiles;
import dev.mod.io.FolderLock;
import dev.mod.io.ModelFile;
import dev.mod.model.Model;
import dev.mod.model.ModelInit;
import dev.mod.model.Presets;
import dev.mod.study.StudyDevice;
import dev.mod.study.StudyEnvironment;
import dev.mod.study.StudyFile;
import dev.mod.study.StudyPlots;
import dev.mod.study.StudyRow;
import dev.mod.study.StudyRunner;
import dev.mod.study.StudySettings;
import me.tongfei.progressbar.ProgressBar;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "study", mixinStandardHelpOptions = true, subcommands = StudyCommand.Compare.class,
        description = {"The efficiency study: for every device x sequence length, the prefill forward time of the dense "
                + "model and of the MoD model at each capacity (same weights), with FLOPs, speedup, ideal speedup "
                + "and efficiency, and the decode-step time at context T (calibrated causal routing at the capacity), "
                + "with its speedup, routed fraction and KV cache. Writes study.json (settings, environment, rows), "
                + "rows.csv and PNG plots.",
                "With no arguments: the 'small' preset, capacities 0.125,0.25,0.5,1, T = 128,256,512, on every device "
                        + "present (cpu; TornadoVM's devices under scripts/mod-tornado)."})
final class StudyCommand implements Callable<Integer> {
    @Option(names = "--devices", defaultValue = "all", split = ",",
            description = "all, cpu, reference, tornado (TornadoVM's default device) or tornado:B:D (default: ${DEFAULT-VALUE}).")
    List<String> devices;

    @Option(names = "--capacities", defaultValue = "0.125,0.25,0.5,1", split = ",", description = "Capacities of the MoD rows (default: ${DEFAULT-VALUE}).")
    List<Double> capacities;

    @Option(names = "--seq", defaultValue = "128,256,512", split = ",", paramLabel = "T", description = "Sequence lengths (default: ${DEFAULT-VALUE}).")
    List<Integer> seqLens;

    @Option(names = "--model", defaultValue = "small", paramLabel = "PRESET|FILE",
            description = "A preset (tiny, small, bench) initialised from --seed, or a model file (default: ${DEFAULT-VALUE}).")
    String model;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the preset's weights and of the tokens (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--batch", defaultValue = "1", description = "Sequences per forward pass (default: ${DEFAULT-VALUE}).")
    int batch;

    @Option(names = "--repeats", defaultValue = "9", description = "Timed runs per row after the warm-up (default: ${DEFAULT-VALUE}).")
    int repeats;

    @Option(names = "--warmup-seconds", defaultValue = "1", description = "Warm-up runs per row, at least one (default: ${DEFAULT-VALUE}).")
    double warmupSeconds;

    @Option(names = "--decode-steps", defaultValue = "32", paramLabel = "S",
            description = "Decode steps per timed decode run, ending at context T; 0 measures no decode (default: ${DEFAULT-VALUE}).")
    int decodeSteps;

    @Option(names = "--out", paramLabel = "DIR", description = "Folder of the results (default: results/study-<UTC time>).")
    Path out;

    @Mixin
    ProgressOption progress;

    @Option(names = "--resume", description = "Go on with the study in --out, measuring only the rows it lacks.")
    boolean resume;

    @Override
    public Integer call() {
        if (repeats < 1 || batch < 1 || warmupSeconds < 0 || decodeSteps < 0) {
            throw new ModException("--repeats and --batch must be at least 1, --warmup-seconds and --decode-steps at least 0");
        }
        if (out == null) {
            if (resume) {
                throw new ModException("--resume needs the --out folder of the study to go on with");
            }
            out = Path.of("results", "study-" + ZonedDateTime.now(ZoneOffset.UTC).format(DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'")));
        }
        Path studyJson = out.resolve("study.json");
        List<StudyRow> done = List.of();
        if (resume) {
            if (!Files.isRegularFile(studyJson)) {
                throw new ModException("nothing to resume: " + studyJson + " does not exist");
            }
        } else if (Files.exists(studyJson)) {
            throw new ModException(out + " already holds a study: use --resume to go on with it, or another --out");
        } else {
            AtomicFiles.refuseToReplace(out, List.of("rows.csv", "time_vs_capacity.png", "speedup_vs_seq.png", "decode_speedup_vs_seq.png"),
                    "study");
        }
        List<String> ids = deviceIds();
        try (FolderLock lock = FolderLock.acquire(out, "study"); Model m = openModel(); Backend cpu = Backends.start("cpu"); Backend reference = Backends.start("reference");
             Backend tornado = ids.stream().anyMatch(id -> id.startsWith("tornado:")) ? Backends.start("tornado") : null) {
            List<StudyDevice> studyDevices = new ArrayList<>();
            for (String id : ids) {
                Backend backend = id.startsWith("tornado:") ? tornado : id.equals("reference") ? reference : cpu;
                studyDevices.add(StudyDevice.of(backend, id, id.equals("reference") ? reference : cpu));
            }
            StudySettings settings = new StudySettings(model, m.config().toJsonTree(), seed, capacities, seqLens, batch,
                    ids, warmupSeconds, repeats, decodeSteps);
            if (!resume && Files.exists(studyJson)) {
                throw new ModException(out + " already holds a study: use --resume to go on with it, or another --out");
            }
            if (resume) {
                StudyFile earlier = StudyFile.read(studyJson);
                if (!earlier.settings().equals(settings)) {
                    throw new ModException("the study in " + out + " was run with other settings: " + earlier.settings());
                }
                done = earlier.rows();
            }
            StudyRunner runner = new StudyRunner(settings, m, StudyEnvironment.capture(studyDevices), out);
            StudyFile result;
            try (ProgressBar bar = progress.bar("study", runner.rowCount())) {
                result = runner.run(studyDevices, done, row -> {
                    bar.step();
                    bar.setExtraMessage(row.device() + " T=" + row.seqLen() + " " + row.capacityLabel());
                });
            }
            int largestSeq = Collections.max(seqLens);
            double smallestCapacity = Collections.min(capacities);
            List<StudyPlots.Labelled> one = List.of(new StudyPlots.Labelled(out.getFileName().toString(), result.rows()));
            StudyPlots.timeAgainstCapacity(one, largestSeq, out.resolve("time_vs_capacity.png"));
            StudyPlots.speedupAgainstSeqLen(one, smallestCapacity, out.resolve("speedup_vs_seq.png"));
            if (decodeSteps > 0) {
                StudyPlots.decodeSpeedupAgainstSeqLen(one, smallestCapacity, out.resolve("decode_speedup_vs_seq.png"));
            }
            printTable(List.of(new StudyPlots.Labelled("", result.rows())));
            System.out.printf("%nwrote %s, %s, time_vs_capacity.png (T = %d), speedup_vs_seq.png%s (capacity %s)%n",
                    studyJson, out.resolve("rows.csv"), largestSeq, decodeSteps > 0 ? ", decode_speedup_vs_seq.png" : "",
                    smallestCapacity);
        }
        return 0;
    }

    private Model openModel() {
        Path file = Path.of(model);
        if (Files.isRegularFile(file)) {
            return ModelFile.load(file);
        }
        if (model.endsWith(".safetensors")) {
            throw new ModException("no model file " + model);
        }
        return ModelInit.random(Presets.get(model), seed);
    }

    private List<String> deviceIds() {
        List<String> ids = new ArrayList<>();
        for (String d : devices) {
            switch (d) {
                case "all" -> {
                    ids.add("cpu");
                    ids.addAll(tornadoIds());
                }
                case "cpu", "reference" -> ids.add(d);
                case "tornado" -> {
                    List<String> tornado = tornadoIds();
                    if (tornado.isEmpty()) {
                        throw new ModException("--devices tornado: this run is not under TornadoVM (use scripts/mod-tornado study ...)");
                    }
                    ids.add(tornado.get(0));
                }
                default -> {
                    if (!d.matches("tornado:\\d+:\\d+")) {
                        throw new ModException("unknown device \"" + d + "\" (all, cpu, reference, tornado or tornado:B:D)");
                    }
                    if (!tornadoIds().contains(d)) {
                        throw new ModException("no TornadoVM device " + d + " in this run (devices: " + tornadoIds() + ")");
                    }
                    ids.add(d);
                }
            }
        }
        return ids.stream().distinct().toList();
    }

    private static List<String> tornadoIds() {
        return Backends.tornadoDevices().stream().map(Backend.Device::id).toList();
    }

    /** The rows as a table: one line per row, studies labelled when there are several. */
    static void printTable(List<StudyPlots.Labelled> studies) {
        System.out.printf("%n%-18s %-14s %6s %8s %11s %9s %9s %9s %11s %11s %9s %8s %8s%n", "study", "device", "T", "capacity",
                "median ms", "speedup", "ideal", "effic.", "tokens/s", "decode ms", "dec. spd", "routed", "KV/dense");
        for (StudyPlots.Labelled study : studies) {
            for (StudyRow r : study.rows()) {
                if (r.failed()) {
                    System.out.printf("%-18s %-14s %6d %8s  failed: %s%n", study.label(), r.device(), r.seqLen(), r.capacityLabel(), r.error());
                    continue;
                }
                System.out.printf(Locale.ROOT, "%-18s %-14s %6d %8s %11.2f %9s %9.3f %9s %11.0f %s%n", study.label(), r.device(),
                        r.seqLen(), r.capacityLabel(), r.medianMs(), r.speedup() == null ? "-" : String.format(Locale.ROOT, "%.3f", r.speedup()),
                        r.idealSpeedup(), r.efficiency() == null ? "-" : String.format(Locale.ROOT, "%.3f", r.efficiency()),
                        r.tokensPerSecond(), decodeColumns(r.decode()));
            }
        }
    }

    private static String decodeColumns(dev.mod.study.StudyDecode d) {
        if (d == null) {
            return "";
        }
        if (d.error() != null) {
            return "decode: " + d.error();
        }
        return String.format(Locale.ROOT, "%11.3f %9s %8s %8.3f", d.medianMs(),
                d.speedup() == null ? "-" : String.format(Locale.ROOT, "%.3f", d.speedup()),
                d.routedFraction() == null ? "-" : String.format(Locale.ROOT, "%.3f", d.routedFraction()),
                (double) d.kvCacheBytes() / d.denseKvCacheBytes());
    }

    @Command(name = "compare", mixinStandardHelpOptions = true,
            description = "Put studies from different machines or devices side by side: one table, and plots of "
                    + "time against capacity and speedup against sequence length with a line per study and device "
                    + "(given one study: its table and plots again).")
    static final class Compare implements Callable<Integer> {
        @Parameters(arity = "1..*", paramLabel = "STUDY.json", description = "Study files (study.json of each study).")
        List<Path> studies;

        @Option(names = "--out", paramLabel = "DIR", defaultValue = "results/compare", description = "Folder of the plots (default: ${DEFAULT-VALUE}).")
        Path out;

        @Override
        public Integer call() {
            List<StudyPlots.Labelled> labelled = new ArrayList<>();
            List<String> labels = FolderLabels.of(studies.stream().map(p -> p.toAbsolutePath().getParent()).toList(), "the study in");
            for (int i = 0; i < studies.size(); i++) {
                Path p = studies.get(i);
                StudyFile f = StudyFile.read(p);
                String folder = labels.get(i);
                labelled.add(new StudyPlots.Labelled(folder, f.rows()));
                System.out.printf("%-18s %s, %s cores, %s; model %s, seed %d%n", folder, f.environment().get("cpu"),
                        f.environment().get("cores"), f.environment().get("jvm"), f.settings().model(), f.settings().seed());
            }
            printTable(labelled);
            int seqLen = labelled.stream().flatMap(s -> s.rows().stream()).mapToInt(StudyRow::seqLen).max().orElseThrow();
            double capacity = labelled.stream().flatMap(s -> s.rows().stream()).filter(r -> r.capacity() != null)
                    .mapToDouble(StudyRow::capacity).min().orElseThrow();
            StudyPlots.timeAgainstCapacity(labelled, seqLen, out.resolve("time_vs_capacity.png"));
            StudyPlots.speedupAgainstSeqLen(labelled, capacity, out.resolve("speedup_vs_seq.png"));
            // a study run with --decode-steps 0 has no decode rows: no plot rather than an empty one
            boolean decode = StudyPlots.hasDecode(labelled);
            if (decode) {
                StudyPlots.decodeSpeedupAgainstSeqLen(labelled, capacity, out.resolve("decode_speedup_vs_seq.png"));
            }
            System.out.printf("%nwrote %s and %s%s%n", out.resolve("time_vs_capacity.png"), out.resolve("speedup_vs_seq.png"),
                    decode ? " and " + out.resolve("decode_speedup_vs_seq.png") : " (no decode rows: no decode plot)");
            return 0;
        }
    }
}
