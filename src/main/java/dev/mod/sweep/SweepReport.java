package dev.mod.sweep;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mod.ModException;
import dev.mod.StrictJson;
import dev.mod.io.AtomicFiles;
import dev.mod.study.StudyEnvironment;
import dev.mod.sweep.SweepSpec.ExpertVariants;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * The results of one spec's sweep folders (one, or the shards of a split sweep) merged: per budget the best
 * dense and MoD runs and the parabola fits of their isoFLOP curves, the ablations and the causal evaluations;
 * written as sweep.json, runs.csv and the plots, and printed as the table of optima.
 */
public final class SweepReport {
    private static final ObjectMapper JSON = StrictJson.mapper().enable(SerializationFeature.INDENT_OUTPUT);

    private final SweepSpec spec;
    private final List<SweepResult> results;
    private final List<String> missing;
    private final Map<String, SweepRun> planned = new LinkedHashMap<>();
    /** The step times of one sitting (`mod sweep time`), or null: then the runs' own times. */
    private final StepTimes sitting;

    /**
     * A variant of a size at a budget over the seeds it was trained with, one run each: the mean held-out loss with top-k
     * routing, the lowest and the highest, and the mean training time in seconds and median step time in ms; run is
     * the first seed's, for what the seeds share (size, parameters, FLOPs).
     */
    public record Point(SweepResult run, double loss, double low, double high, int seeds, double seconds, double stepMs) {
        static Point of(List<SweepResult> runs) {
            double sum = 0;
            double low = Double.POSITIVE_INFINITY;
            double high = Double.NEGATIVE_INFINITY;
            double seconds = 0;
            double stepMs = 0;
            for (SweepResult r : runs) {
                sum += r.evalLoss();
                low = Math.min(low, r.evalLoss());
                high = Math.max(high, r.evalLoss());
                seconds += r.trainSeconds();
                stepMs += r.stepMs();
            }
            int n = runs.size();
            return new Point(runs.getFirst(), sum / n, low, high, n, seconds / n, stepMs / n);
        }

        public long params() {
            return run.params();
        }

        public double forwardFlops() {
            return run.forwardFlops();
        }
    }

    /**
     * A budget's optimum for one kind of model: the point of lowest mean loss and the curve fitted to the means (null
     * below three sizes).
     */
    public record Optimum(Point best, IsoFlopFit fit) {
    }

    SweepReport(SweepSpec spec, List<SweepResult> results, List<String> missing, StepTimes sitting) {
        this.spec = spec;
        this.results = results;
        this.missing = missing;
        this.sitting = sitting;
        for (SweepRun run : SweepRun.plan(spec)) {
            planned.put(run.name(), run);
        }
    }

    /** Merges folders of the same spec; a run finished in more than one folder is taken from the first. */
    public static SweepReport of(List<Path> dirs) {
        SweepSpec spec = Sweep.readSpec(dirs.get(0));
        for (Path dir : dirs.subList(1, dirs.size())) {
            String difference = StrictJson.firstDifference(Sweep.readSpec(dir).toJsonTree(), spec.toJsonTree(), "there",
                    "in " + dirs.get(0));
            if (difference != null) {
                throw new ModException(dir + " is a sweep of another spec than " + dirs.get(0) + " (" + difference + ")");
            }
        }
        List<SweepResult> results = new ArrayList<>();
        List<String> missing = new ArrayList<>();
        for (SweepRun run : SweepRun.plan(spec)) {
            SweepResult found = null;
            for (Path dir : dirs) {
                found = Sweep.finished(spec, run, dir.resolve("runs").resolve(run.name()));
                if (found != null) {
                    break;
                }
            }
            if (found == null) {
                missing.add(run.name());
            } else {
                results.add(found);
            }
        }
        if (results.isEmpty()) {
            throw new ModException("no finished runs in " + dirs);
        }
        return new SweepReport(spec, results, missing, StepTimes.read(dirs.get(0)));
    }

    public List<SweepResult> results() {
        return results;
    }

    public List<String> missing() {
        return missing;
    }

    /** Every point: the finished runs of each variant, size and budget (their seeds) together, in the plan's order. */
    public List<Point> points() {
        Map<String, List<SweepResult>> bySetting = new LinkedHashMap<>();
        for (SweepResult r : results) {
            bySetting.computeIfAbsent(r.variant() + "|" + r.budget() + "|" + r.size(), key -> new ArrayList<>()).add(r);
        }
        return bySetting.values().stream().map(Point::of).toList();
    }

    /** The isoFLOP points of a budget of one kind (dense or MoD), in the order of their sizes. */
    public List<Point> curve(double budget, boolean dense) {
        return curve(budget, dense ? "dense" : "mod");
    }

    /** The points of a variant at a budget, in the order of their sizes. */
    public List<Point> curve(double budget, String variant) {
        return points().stream().filter(p -> p.run().variant().equals(variant) && p.run().budget() == budget)
                .sorted(Comparator.comparingLong(Point::params)).toList();
    }

    /** The variants of the spec's MoD curves at other capacities at a budget ("mod-c0.5"), none without them. */
    public List<String> capacityVariants(double budget) {
        SweepSpec.CapacityCurves c = spec.capacityCurves();
        return c == null || !c.at(budget) ? List.of() : c.capacities().stream().map(SweepRun::capacityVariant).toList();
    }

    /** The best run and the fit of one budget's curve; null when the curve has no finished run. */
    public Optimum optimum(double budget, boolean dense) {
        return optimum(budget, dense ? "dense" : "mod");
    }

    /** The best run and the fit of a variant's curve at a budget; null when the curve has no finished run. */
    public Optimum optimum(double budget, String variant) {
        List<Point> curve = curve(budget, variant);
        if (curve.isEmpty()) {
            return null;
        }
        Point best = curve.stream().min(Comparator.comparingDouble(Point::loss)).orElseThrow();
        IsoFlopFit fit = curve.size() >= 3
                ? IsoFlopFit.of(curve.stream().mapToDouble(Point::params).toArray(), curve.stream().mapToDouble(Point::loss).toArray())
                : null;
        return new Optimum(best, fit);
    }

    /**
     * The wall-clock-matched counterpart of a budget's optimum of one kind: the best point of the other kind, at any
     * budget, timed alike, whose training took no longer (null if none did). Beside the FLOP-matched comparison, since a MoD step
     * of equal FLOPs need not take equal time.
     */
    public Point wallClockRival(double budget, boolean dense) {
        Optimum o = optimum(budget, dense);
        if (o == null) {
            return null;
        }
        double limit = seconds(o.best());
        return points().stream().filter(p -> p.run().isoFlop() && p.run().dense() != dense && timedAlike(p) && seconds(p) <= limit)
                .min(Comparator.comparingDouble(Point::loss)).orElse(null);
    }

    /** Whether the wall-clock figures come from one sitting's step times (step_times.json) rather than the runs' own. */
    public boolean timedInOneSitting() {
        return sitting != null;
    }

    /**
     * Whether a point's times compare with the report's others: without a sitting every point has its runs' own; with
     * one, only the settings it timed (not a size or capacity added after it, whose runs' own times came from other
     * loads and threads).
     */
    public boolean timedAlike(Point p) {
        return sitting == null || sittingMs(p) != null;
    }

    /** A point's step time in ms: the sitting's for its setting where timed, else its runs' own median. */
    public double stepMs(Point p) {
        Double ms = sittingMs(p);
        return ms != null ? ms : p.stepMs();
    }

    /** A point's training time in seconds: its steps at the sitting's step time where timed, else its runs' own. */
    public double seconds(Point p) {
        Double ms = sittingMs(p);
        return ms != null ? p.run().steps() * ms / 1000 : p.seconds();
    }

    // the sitting's step time of the point's setting, or null where there is no sitting or it did not time the setting
    private Double sittingMs(Point p) {
        return sitting == null ? null : sitting.ms(p.run().variant(), p.run().size());
    }

    /** The ablation points, with the MoD and dense points of the ablation's budget and size for comparison. */
    public List<Point> ablation() {
        SweepSpec.Ablation a = spec.ablation();
        if (a == null) {
            return List.of();
        }
        return points().stream().filter(p -> p.run().budget() == a.budget() && p.run().size().equals(a.size())
                && !ExpertVariants.VARIANTS.contains(p.run().variant())).toList();
    }

    /** The variants of the experts comparison, dense and MoD first (each an isoFLOP curve at the experts' budget). */
    public static final List<String> EXPERT_COMPARISON = Stream.concat(Stream.of("dense", "mod"),
            ExpertVariants.VARIANTS.stream()).toList();

    /** A variant's points at the experts' budget, in the order of their sizes (empty without experts in the spec). */
    public List<Point> expertCurve(String variant) {
        ExpertVariants e = spec.experts();
        if (e == null) {
            return List.of();
        }
        return points().stream().filter(p -> p.run().variant().equals(variant) && p.run().budget() == e.budget())
                .sorted(Comparator.comparingLong(Point::params)).toList();
    }

    /** A variant's best point at the experts' budget (lowest mean loss), or null when none finished. */
    public Point expertOptimum(String variant) {
        return expertCurve(variant).stream().min(Comparator.comparingDouble(Point::loss)).orElse(null);
    }

    /** FLOPs of a point's feed-forwards per token (one sequence of T), as its config counts them. */
    public double feedForwardFlops(Point p) {
        SweepRun run = planned.get(p.run().name());
        return run.feedForwardFlopsPerToken(spec.seqLen());
    }

    public SweepSpec spec() {
        return spec;
    }

    /** Writes sweep.json, runs.csv and the plots into dir and prints the table of optima to out. */
    public void write(Path dir, PrintStream out) {
        AtomicFiles.write(dir.resolve("sweep.json"), o -> o.write(JSON.writeValueAsString(json()).getBytes(StandardCharsets.UTF_8)));
        AtomicFiles.write(dir.resolve("runs.csv"), o -> o.write(csv().getBytes(StandardCharsets.UTF_8)));
        SweepPlots.all(this, dir);
        out.print(table());
        out.printf("wrote %s, %s and the plots (%s)%n", dir.resolve("sweep.json"), dir.resolve("runs.csv"),
                String.join(", ", SweepPlots.FILES));
    }

    ObjectNode json() {
        ObjectNode root = JSON.createObjectNode();
        root.put("schema", 1);
        root.set("spec", spec.toJsonTree());
        root.set("environment", JSON.valueToTree(StudyEnvironment.capture(List.of())));
        ArrayNode runs = root.putArray("runs");
        results.forEach(r -> runs.add(JSON.valueToTree(r)));
        ArrayNode miss = root.putArray("missing");
        missing.forEach(miss::add);
        root.put("wall_clock_times", sitting == null ? "runs" : StepTimes.FILE);
        root.set("step_times", sitting == null ? null : JSON.valueToTree(sitting));
        ArrayNode budgets = root.putArray("budgets");
        for (double budget : spec.budgets()) {
            ObjectNode b = budgets.addObject();
            b.put("budget", budget);
            Optimum dense = optimum(budget, true);
            Optimum mod = optimum(budget, false);
            b.set("dense", optimumJson(dense));
            b.set("mod", optimumJson(mod));
            if (dense != null && mod != null) {
                b.put("loss_difference", mod.best().loss() - dense.best().loss());
                b.put("step_time_ratio", stepMs(mod.best()) / stepMs(dense.best()));
                b.put("train_time_ratio", seconds(mod.best()) / seconds(dense.best()));
                Point rival = wallClockRival(budget, false);
                b.put("wall_clock_rival_dense", rival == null ? null : rival.run().name());
                b.put("wall_clock_loss_difference", rival == null ? null : mod.best().loss() - rival.loss());
                b.put("forward_flops_ratio", mod.best().forwardFlops() / dense.best().forwardFlops());
                b.put("params_ratio", (double) mod.best().params() / dense.best().params());
            }
            if (!capacityVariants(budget).isEmpty()) {
                ArrayNode capacities = b.putArray("capacities");
                for (String variant : capacityVariants(budget)) {
                    Optimum o = optimum(budget, variant);
                    ObjectNode c = capacities.addObject();
                    c.put("variant", variant);
                    c.set("optimum", optimumJson(o));
                    c.put("loss_difference", o == null || dense == null ? null : o.best().loss() - dense.best().loss());
                    c.put("forward_flops_ratio", o == null || dense == null ? null : o.best().forwardFlops() / dense.best().forwardFlops());
                }
            }
        }
        if (spec.experts() != null) {
            ObjectNode experts = root.putObject("experts");
            experts.put("budget", spec.experts().budget());
            Point dense = expertOptimum("dense");
            for (String variant : EXPERT_COMPARISON) {
                Point p = expertOptimum(variant);
                if (p != null) {
                    ObjectNode v = experts.putObject(variant);
                    v.put("best_run", p.run().name());
                    v.put("size", p.run().size());
                    v.put("params", p.params());
                    v.put("eval_loss", p.loss());
                    v.put("seeds", p.seeds());
                    v.put("feed_forward_flops_per_token", feedForwardFlops(p));
                    v.put("loss_difference_to_dense", dense == null ? null : p.loss() - dense.loss());
                }
            }
        }
        return root;
    }

    private ObjectNode optimumJson(Optimum o) {
        if (o == null) {
            return null;
        }
        ObjectNode n = JSON.createObjectNode();
        n.put("best_run", o.best().run().name());
        n.put("size", o.best().run().size());
        n.put("eval_loss", o.best().loss());
        n.put("seeds", o.best().seeds());
        n.put("eval_loss_low", o.best().low());
        n.put("eval_loss_high", o.best().high());
        n.put("params", o.best().params());
        n.put("forward_flops", o.best().forwardFlops());
        if (o.fit() != null) {
            ObjectNode f = n.putObject("fit");
            f.put("a", o.fit().a());
            f.put("b", o.fit().b());
            f.put("c", o.fit().c());
            f.put("optimal_params", o.fit().optimalParams());
            f.put("optimal_loss", o.fit().optimalLoss());
        }
        return n;
    }

    String csv() {
        StringBuilder s = new StringBuilder("name,variant,budget,size,dim,n_layers,capacity,routed_layers,routing,params,steps,lr,"
                + "train_flops,forward_flops,eval_loss,eval_loss_router,eval_loss_predictor,routed_fraction_router,"
                + "routed_fraction_predictor,router_agreement,predictor_agreement,step_ms,tokens_per_s,train_seconds,threads,cpu,device\n");
        for (SweepResult r : results) {
            List<Object> cells = List.of(r.name(), r.variant(), r.budget(), r.size(), r.dim(), r.nLayers(), cell(r.capacity()),
                    "\"" + r.routedLayers().toString().replace(" ", "") + "\"", r.routing(), r.params(), r.steps(), r.lr(),
                    r.trainFlops(), r.forwardFlops(), r.evalLoss(), cell(r.evalLossRouter()), cell(r.evalLossPredictor()),
                    cell(r.routedFractionRouter()), cell(r.routedFractionPredictor()), cell(r.routerAgreement()),
                    cell(r.predictorAgreement()), r.stepMs(), r.tokensPerSecond(), r.trainSeconds(), r.threads(),
                    "\"" + r.cpu().replace("\"", "'") + "\"", "\"" + r.device().replace("\"", "'") + "\"");
            s.append(String.join(",", cells.stream().map(String::valueOf).toList())).append('\n');
        }
        return s.toString();
    }

    private static Object cell(Double v) {
        return v == null ? "" : v;
    }

    /** Per budget the best dense and MoD runs, their losses, parameters and forward FLOPs, and the differences. */
    public String table() {
        StringBuilder s = new StringBuilder();
        s.append(String.format(Locale.ROOT, "%-9s | %-8s %8s %9s %7s | %-8s %8s %9s %7s | %8s %9s %9s | %s%n",
                "budget", "dense", "params", "fwd FLOPs", "loss", "MoD", "params", "fwd FLOPs", "loss", "MoD-dense",
                "fwd ratio", "params x", "fitted optimum params dense / MoD"));
        for (double budget : spec.budgets()) {
            Optimum dense = optimum(budget, true);
            Optimum mod = optimum(budget, false);
            s.append(String.format(Locale.ROOT, "%-9s | %s | %s | ", SweepRun.number(budget), cells(dense), cells(mod)));
            if (dense != null && mod != null) {
                s.append(String.format(Locale.ROOT, "%+9.4f %9.3f %9.2f | %s / %s%n",
                        mod.best().loss() - dense.best().loss(),
                        mod.best().forwardFlops() / dense.best().forwardFlops(),
                        (double) mod.best().params() / dense.best().params(), fitted(dense), fitted(mod)));
            } else {
                s.append(String.format("%9s %9s %9s |%n", "-", "-", "-"));
            }
        }
        s.append("(best = lowest held-out loss with top-k routing among the sizes trained; fwd FLOPs of one sequence of ")
                .append(spec.seqLen()).append(" tokens; MoD-dense < 0: MoD better)\n");
        s.append("wall clock").append(sitting == null ? " (the runs' own step times)"
                        : String.format(Locale.ROOT, " (step times of one sitting, %s: %d rounds of %d steps)", StepTimes.FILE,
                        sitting.rounds(), sitting.steps()))
                .append(": the optima's step time and training time, MoD / dense; the best dense run (any budget) that "
                        + "trained no longer than the MoD optimum, and MoD's loss minus its\n");
        for (double budget : spec.budgets()) {
            Optimum dense = optimum(budget, true);
            Optimum mod = optimum(budget, false);
            if (dense == null || mod == null) {
                continue;
            }
            Point rival = wallClockRival(budget, false);
            s.append(String.format(Locale.ROOT, "  %-9s step %.3fx, training %.3fx (%.0f s / %.0f s); %s%n", SweepRun.number(budget),
                    stepMs(mod.best()) / stepMs(dense.best()), seconds(mod.best()) / seconds(dense.best()),
                    seconds(mod.best()), seconds(dense.best()), rival == null ? "no dense run trained that fast"
                            : String.format(Locale.ROOT, "%s in %.0f s, %+.4f", rival.run().name(), seconds(rival),
                            mod.best().loss() - rival.loss())));
        }
        if (spec.seeds() > 1) {
            s.append("losses are means over the seeds trained (up to ").append(spec.seeds())
                    .append("); lowest - highest of each optimum:\n");
            for (double budget : spec.budgets()) {
                s.append(String.format(Locale.ROOT, "  %-9s dense %s, MoD %s%n", SweepRun.number(budget),
                        spread(optimum(budget, true)), spread(optimum(budget, false))));
            }
        }
        s.append(capacitiesTable());
        s.append(curvesTable());
        if (!missing.isEmpty()) {
            s.append(missing.size()).append(" runs not finished yet: ").append(String.join(", ", missing)).append('\n');
        }
        s.append(expertsTable());
        List<Point> ablation = ablation();
        if (!ablation.isEmpty()) {
            s.append(String.format(Locale.ROOT, "ablations at %s, size %s: held-out loss (top-k / router rule)%n",
                    SweepRun.number(spec.ablation().budget()), spec.ablation().size()));
            for (Point p : ablation) {
                SweepResult r = p.run();
                s.append(String.format(Locale.ROOT, "  %-16s %.4f%s%s%n", r.variant(), p.loss(),
                        r.evalLossRouter() == null || p.seeds() > 1 ? "" : String.format(Locale.ROOT, " / %.4f", r.evalLossRouter()),
                        p.seeds() > 1 ? String.format(Locale.ROOT, " (mean of %d seeds, %s)", p.seeds(), range(p)) : ""));
            }
        }
        return s.toString();
    }

    // the curves at other capacities: each budget's best size against the dense and the MoD optimum
    private String capacitiesTable() {
        if (spec.capacityCurves() == null) {
            return "";
        }
        StringBuilder s = new StringBuilder("MoD at other capacities (every other block routed): each budget's best size, and its"
                + " loss minus the dense and the MoD optimum's (< 0: better)\n");
        for (double budget : spec.budgets()) {
            Optimum dense = optimum(budget, true);
            Optimum mod = optimum(budget, false);
            for (String variant : capacityVariants(budget)) {
                Optimum o = optimum(budget, variant);
                if (o == null) {
                    s.append(String.format(Locale.ROOT, "  %-9s %-10s no run finished%n", SweepRun.number(budget), variant));
                    continue;
                }
                Point p = o.best();
                s.append(String.format(Locale.ROOT, "  %-9s %-10s %-8s %8s %9.3g %7.4f | dense %s, MoD %s | fwd x dense %.3f | fitted optimum %s%n",
                        SweepRun.number(budget), variant, p.run().size(), millions(p.params()), p.forwardFlops(), p.loss(),
                        dense == null ? "-" : String.format(Locale.ROOT, "%+.4f", p.loss() - dense.best().loss()),
                        mod == null ? "-" : String.format(Locale.ROOT, "%+.4f", p.loss() - mod.best().loss()),
                        dense == null ? Double.NaN : p.forwardFlops() / dense.best().forwardFlops(), fitted(o)));
            }
        }
        return s.toString();
    }

    // every isoFLOP point, a budget's sizes a row each: the mean loss over the seeds trained and their spread, so that
    // the report alone says how firmly each optimum is located
    private String curvesTable() {
        List<String> extra = spec.capacityCurves() == null ? List.of()
                : spec.capacityCurves().capacities().stream().map(SweepRun::capacityVariant).toList();
        StringBuilder s = new StringBuilder("isoFLOP curves: held-out loss with top-k routing, dense / MoD"
                + (extra.isEmpty() ? "" : " / " + String.join(" / ", extra)) + ", mean (lowest-highest"
                + " where seeds differ); * the curve's best; \"not yet\": no seed finished\n");
        StringBuilder header = new StringBuilder(String.format(Locale.ROOT, "  %-9s %-8s %-28s %-28s", "budget", "size", "dense", "MoD"));
        extra.forEach(v -> header.append(String.format(Locale.ROOT, " %-28s", v)));
        s.append(header.toString().stripTrailing()).append('\n');
        for (double budget : spec.budgets()) {
            List<String> variants = new ArrayList<>(List.of("dense", "mod"));
            variants.addAll(extra);
            List<List<Point>> curves = variants.stream().map(v -> curve(budget, v)).toList();
            List<Optimum> optima = variants.stream().map(v -> optimum(budget, v)).toList();
            for (String size : plannedSizes(budget)) {
                StringBuilder row = new StringBuilder(String.format(Locale.ROOT, "  %-9s %-8s", SweepRun.number(budget), size));
                for (int v = 0; v < variants.size(); v++) {
                    String cell = v < 2 || capacityVariants(budget).contains(variants.get(v))
                            ? curveCell(curves.get(v), optima.get(v), size) : "-";
                    row.append(String.format(Locale.ROOT, " %-28s", cell));
                }
                s.append(row.toString().stripTrailing()).append('\n');
            }
        }
        return s.toString();
    }

    // the sizes of a budget's isoFLOP runs in the spec, smallest first
    private List<String> plannedSizes(double budget) {
        return planned.values().stream().filter(r -> r.isoFlop() && r.budget() == budget)
                .sorted(Comparator.comparingLong(SweepRun::params)).map(r -> r.size().name()).distinct().toList();
    }

    // a size's point of one budget's curve of one variant, starred where it is that curve's optimum
    private String curveCell(List<Point> curve, Optimum optimum, String size) {
        Point p = curve.stream().filter(q -> q.run().size().equals(size)).findFirst().orElse(null);
        if (p == null) {
            return "not yet";
        }
        String star = optimum.best().equals(p) ? "*" : "";
        if (spec.seeds() == 1) {
            return String.format(Locale.ROOT, "%.4f%s", p.loss(), star);
        }
        List<String> notes = new ArrayList<>();
        if (p.seeds() > 1) {
            notes.add(range(p));
        }
        if (p.seeds() < spec.seeds()) {
            notes.add(p.seeds() + " of " + spec.seeds() + " seeds");
        }
        return String.format(Locale.ROOT, "%.4f%s (%s)", p.loss(), star, String.join(", ", notes));
    }

    // the experts comparison: each variant's best size at the experts' budget, its feed-forward FLOPs per token against
    // the dense optimum's, its loss, and the paper's two MoDE comparisons
    private String expertsTable() {
        ExpertVariants e = spec.experts();
        Point dense = expertOptimum("dense");
        if (e == null || dense == null) {
            return "";
        }
        StringBuilder s = new StringBuilder(String.format(Locale.ROOT, "mixtures of experts at %s: %d experts (moe at capacity %s "
                        + "each; moe-reduced and mode-integrated at %s, the latter with %d no-op experts); best size per variant%n",
                SweepRun.number(e.budget()), e.count(), SweepRun.number(1.0 / e.count()), SweepRun.number(e.reducedCapacity()), e.noOps()));
        s.append(String.format(Locale.ROOT, "  %-16s %-8s %8s %12s %8s %8s%n", "variant", "size", "params", "ffn FLOPs x", "loss",
                "- dense"));
        for (String variant : EXPERT_COMPARISON) {
            Point p = expertOptimum(variant);
            if (p != null) {
                s.append(String.format(Locale.ROOT, "  %-16s %-8s %8s %12.3f %8.4f %+8.4f%n", variant, p.run().size(), millions(p.params()),
                        feedForwardFlops(p) / feedForwardFlops(dense), p.loss(), p.loss() - dense.loss()));
            }
        }
        s.append(comparison("staged MoDE against MoE (MoE's FLOPs per feed-forward and fewer)", "mode-staged", "moe"));
        s.append(comparison("integrated MoDE against MoE at the same reduced capacity (the same FLOPs)", "mode-integrated", "moe-reduced"));
        return s.toString();
    }

    private String comparison(String what, String variant, String baseline) {
        Point a = expertOptimum(variant);
        Point b = expertOptimum(baseline);
        return a == null || b == null ? "" : String.format(Locale.ROOT, "  %s: %+.4f (< 0: %s better)%n", what, a.loss() - b.loss(), variant);
    }

    private static String cells(Optimum o) {
        if (o == null) {
            return String.format("%-8s %8s %9s %7s", "-", "-", "-", "-");
        }
        Point p = o.best();
        return String.format(Locale.ROOT, "%-8s %8s %9.3g %7.4f", p.run().size(), millions(p.params()), p.forwardFlops(), p.loss());
    }

    private static String spread(Optimum o) {
        if (o == null) {
            return "-";
        }
        Point best = o.best();
        return best.seeds() == 1
                ? String.format(Locale.ROOT, "%s %.4f (1 seed)", best.run().size(), best.loss())
                : best.run().size() + " " + range(best) + " (" + best.seeds() + " seeds)";
    }

    private static String range(Point p) {
        return String.format(Locale.ROOT, "%.4f-%.4f", p.low(), p.high());
    }

    private static String fitted(Optimum o) {
        return o.fit() == null || o.fit().optimalParams() == null ? "none" : millions(o.fit().optimalParams());
    }

    static String millions(double params) {
        return String.format(Locale.ROOT, "%.3gM", params / 1e6);
    }
}
