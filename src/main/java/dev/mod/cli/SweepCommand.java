package dev.mod.cli;

import dev.mod.ModException;
import dev.mod.io.TextFile;
import dev.mod.sweep.Sweep;
import dev.mod.sweep.SweepReport;
import dev.mod.sweep.SweepResult;
import dev.mod.sweep.SweepRun;
import dev.mod.sweep.StepTimes;
import dev.mod.sweep.SweepSpec;
import dev.mod.train.Trainer;
import me.tongfei.progressbar.ProgressBar;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "sweep", mixinStandardHelpOptions = true, subcommands = {SweepCommand.Report.class, SweepCommand.Time.class},
        description = {"The paper's isoFLOP analysis and routing ablations at small scale: at each training-FLOP budget, "
                + "every model size of a family trained as a dense baseline and as MoD (capacity 12.5%%, every other block), "
                + "plus ablations (other capacities, every block routed, stochastic routing) at one budget, where the spec "
                + "has \"capacity_curves\" MoD at other capacities at every size of some budgets, and where it has "
                + "\"experts\" the mixtures of experts (moe, moe-reduced, mode-integrated, mode-staged) at one "
                + "budget; every run evaluated on the same held-out windows with top-k routing and, for MoD, with the causal "
                + "rules of generation.",
                "Each run is a `mod train` run folder under --out/runs/; a stopped sweep resumes where it stopped "
                        + "(a changed spec is refused). At the end: sweep.json, runs.csv, plots and the table of optima "
                        + "(`mod sweep report` merges shard folders)."})
final class SweepCommand implements Callable<Integer> {
    @Option(names = "--spec", paramLabel = "FILE.json", description = "The sweep spec (default: the built-in one; see --print-spec).")
    Path specFile;

    @Option(names = "--quick", description = "The built-in quick spec: four sizes at a tenth of the budgets (a few minutes).")
    boolean quick;

    @Option(names = "--paper", description = "The built-in spec for the paper's headline claim: 6 to 8 layers, budgets 1e13 to 1e14, "
            + "two seeds, a held-out tenth of whole files, the Gaussian control, the predictor's FLOPs counted, MoD at 50%% "
            + "capacity at 1e13 and 3.16e13 (hours on 2 cores).")
    boolean paper;

    @Option(names = "--print-spec", description = "Print the spec (built-in, --quick or --spec) as JSON and exit.")
    boolean printSpec;

    @Option(names = "--list", description = "List the runs (steps, learning rate, parameters, FLOPs per forward pass) and exit.")
    boolean list;

    @Option(names = "--out", paramLabel = "DIR", description = "The sweep's folder (default: results/sweep, results/sweep-quick with --quick, "
            + "results/sweep-paper with --paper).")
    Path out;

    @Option(names = "--shard", paramLabel = "i/n", description = "Run only every n-th run, starting at run i (0 <= i < n).")
    String shard;

    @Option(names = "--runs", paramLabel = "GLOB[,GLOB...]", description = "Run only the runs whose names match one of "
            + "the globs (`*` any characters, `?` one; for example 'b3.16e13-*-s1'), within --shard if given; "
            + "the others are left as they are (see --list).")
    String runNames;

    @Mixin
    Threads threads;

    @Mixin
    BackendOption backend;

    @Mixin
    ProgressOption progress;

    @Override
    public Integer call() {
        if ((quick ? 1 : 0) + (paper ? 1 : 0) + (specFile != null ? 1 : 0) > 1) {
            throw new ModException("--quick, --paper and --spec each choose the spec: give one");
        }
        SweepSpec spec = specFile != null ? readSpec(specFile) : quick ? SweepSpec.quick() : paper ? SweepSpec.paper() : SweepSpec.defaults();
        if (printSpec) {
            System.out.println(spec.toJson());
            return 0;
        }
        Sweep.Shard part = shard == null ? Sweep.Shard.ALL : Sweep.Shard.parse(shard);
        Sweep.RunNames names = runNames == null ? Sweep.RunNames.ALL : Sweep.RunNames.parse(runNames);
        Path dir = out != null ? out : Path.of(quick ? "results/sweep-quick" : paper ? "results/sweep-paper" : "results/sweep");
        int threadCount = threads.resolve();
        Sweep sweep = new Sweep(spec, dir, threadCount, backend.startForTraining(threadCount).training(backend.device));
        List<SweepRun> runs = sweep.runs(part, names);
        if (list) {
            System.out.printf(Locale.ROOT, "%-34s %7s %9s %9s %10s%n", "run", "steps", "lr", "params", "fwd FLOPs");
            for (SweepRun r : runs) {
                System.out.printf(Locale.ROOT, "%-34s %7d %9.2e %9d %10.3g%n", r.name(), r.steps(), r.lr(), r.params(),
                        r.forwardFlops(spec.seqLen()));
            }
            return 0;
        }
        System.out.printf(Locale.ROOT, "sweep into %s: %d runs%s%s, %d threads%n", dir, runs.size(),
                part.count() == 1 ? "" : " (shard " + part.index() + "/" + part.count() + ")",
                runNames == null ? "" : " (--runs " + runNames + ")", threadCount);
        sweep.run(part, names, new Progress(progress));
        if (part.count() > 1) {
            System.out.println("shard done; merge the shard folders with `mod sweep report DIR...`");
            return 0;
        }
        SweepReport.of(List.of(dir)).write(dir, System.out);
        return 0;
    }

    private static SweepSpec readSpec(Path file) {
        try {
            return SweepSpec.fromJson(TextFile.read(file), file.toString());
        } catch (IOException e) {
            throw new ModException("cannot read sweep spec " + file + ": " + e.getMessage(), e);
        }
    }

    /** A line per run, and a progress bar while it trains. */
    private static final class Progress implements Sweep.Listener {
        private final ProgressOption display;
        private ProgressBar bar;

        Progress(ProgressOption display) {
            this.display = display;
        }

        @Override
        public void runStarted(SweepRun run, int number, int of, boolean resumed) {
            System.out.printf(Locale.ROOT, "[%d/%d] %s: %d steps, lr %.2e%s%n", number, of, run.name(), run.steps(), run.lr(),
                    resumed ? " (resumed or done)" : "");
            bar = display.bar(run.name(), run.steps());
        }

        @Override
        public void step(Trainer.Progress p) {
            bar.stepTo(p.step());
            bar.setExtraMessage(String.format(Locale.ROOT, "loss %.3f, %.0f tok/s", p.loss(), p.tokensPerSecond()));
        }

        @Override
        public void runFinished(SweepRun run, SweepResult result) {
            bar.close();
            System.out.printf(Locale.ROOT, "    held-out loss %.4f%s%n", result.evalLoss(),
                    result.evalLossRouter() == null ? "" : String.format(Locale.ROOT, " (router rule %.4f%s)",
                            result.evalLossRouter(), result.evalLossPredictor() == null ? ""
                                    : String.format(Locale.ROOT, ", predictor %.4f", result.evalLossPredictor())));
        }
    }

    @Command(name = "report", mixinStandardHelpOptions = true,
            description = "Merge sweep folders (shards of one spec) into sweep.json, runs.csv, the plots and the table of optima.")
    static final class Report implements Callable<Integer> {
        @Parameters(arity = "1..*", paramLabel = "DIR", description = "Sweep folders of the same spec.")
        List<Path> dirs;

        @Option(names = "--out", paramLabel = "DIR", description = "Where the report goes (default: the first folder).")
        Path out;

        @Override
        public Integer call() {
            SweepReport.of(dirs).write(out != null ? out : dirs.get(0), System.out);
            return 0;
        }
    }

    @Command(name = "time", mixinStandardHelpOptions = true,
            description = {"Time the training step of every isoFLOP setting (dense and MoD at each size) of a sweep in one "
                    + "sitting, for its wall-clock comparisons: a run's own step times come from whatever else shared the "
                    + "machine while it trained.",
                    "Each round trains each setting --steps steps (in a scratch folder, removed after), the order reversed "
                            + "every other round; writes DIR/step_times.json, which `mod sweep report` then uses for the "
                            + "step-time and training-time ratios, the wall-clock-matched comparison and its plot. Run it "
                            + "on a quiet machine."})
    static final class Time implements Callable<Integer> {
        @Parameters(arity = "1", paramLabel = "DIR", description = "The sweep's folder (its spec.json says what to time).")
        Path dir;

        @Option(names = "--steps", defaultValue = "100", description = "Steps a setting trains in each round; its time is the "
                + "median past the first fifth (default: ${DEFAULT-VALUE}).")
        int steps;

        @Option(names = "--rounds", defaultValue = "3", description = "Rounds; a setting's time is the median of its rounds "
                + "(default: ${DEFAULT-VALUE}).")
        int rounds;

        @Mixin
        Threads threads;

        @Mixin
        BackendOption backend;

        @Override
        public Integer call() {
            SweepSpec spec = Sweep.readSpec(dir);
            int threadCount = threads.resolve();
            System.out.printf(Locale.ROOT, "timing %d settings of %s: %d rounds of %d steps, %d threads%n",
                    StepTimes.settings(spec).size(), dir, rounds, steps, threadCount);
            StepTimes times = StepTimes.measure(spec, dir, steps, rounds, threadCount, backend.name,
                    backend.startForTraining(threadCount).training(backend.device), System.out::println);
            times.write(dir);
            System.out.println("wrote " + StepTimes.file(dir) + "; `mod sweep report " + dir + "` uses it");
            return 0;
        }
    }
}
