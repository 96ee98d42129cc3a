package dev.mod.sweep;

import dev.mod.plot.Charts;
import dev.mod.plot.Charts.Axis;
import dev.mod.plot.Charts.Line;
import dev.mod.plot.Charts.Look;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.function.Predicate;
import java.util.function.ToDoubleFunction;

/** The sweep's plots, in the project's one chart style. */
final class SweepPlots {
    static final List<String> FILES = List.of("isoflop.png", "loss_vs_forward_flops.png", "ablations.png", "causal_eval.png",
            "loss_vs_forward_flops_all.png", "loss_vs_train_time.png", "experts.png");

    private SweepPlots() {
    }

    static void all(SweepReport report, Path dir) {
        isoFlop(report, dir.resolve(FILES.get(0)));
        lossAgainstForwardFlops(report, dir.resolve(FILES.get(1)));
        ablations(report, dir.resolve(FILES.get(2)));
        causalEvaluation(report, dir.resolve(FILES.get(3)));
        everyPointAgainstForwardFlops(report, dir.resolve(FILES.get(4)));
        lossAgainstTrainingTime(report, dir.resolve(FILES.get(5)));
        experts(report, dir.resolve(FILES.get(6)));
    }

    /**
     * The mixture-of-experts comparison (the paper's Figure 7): each variant's sizes at the experts' budget, held-out loss
     * against FLOPs of the feed-forwards per token, both divided by the dense optimum's; lower-left is better.
     */
    static void experts(SweepReport report, Path png) {
        SweepReport.Point dense = report.expertOptimum("dense");
        List<Line> lines = new ArrayList<>();
        int hue = 0;
        for (String variant : SweepReport.EXPERT_COMPARISON) {
            List<SweepReport.Point> curve = report.expertCurve(variant);
            if (dense != null && !curve.isEmpty()) {
                lines.add(spread(new Line(variant, curve.stream().mapToDouble(p -> report.feedForwardFlops(p) / report.feedForwardFlops(dense)).toArray(),
                        curve.stream().mapToDouble(p -> p.loss() / dense.loss()).toArray(), hue,
                        SweepSpec.ExpertVariants.VARIANTS.contains(variant) ? Look.SOLID : Look.DASHED), curve.stream().map(p -> scaled(p, dense.loss())).toList()));
            }
            hue++;
        }
        SweepSpec.ExpertVariants e = report.spec().experts();
        Charts.lines("Mixtures of experts and depths: loss against feed-forward FLOPs",
                e == null ? "no experts in this spec" : subtitle(report) + "; every size at " + SweepRun.number(e.budget())
                        + " FLOPs, both axes over the dense optimum's; lower-left is better",
                new Axis("feed-forward FLOPs per token / the dense optimum's", true),
                new Axis("held-out loss / the dense optimum's", false), lines, png);
    }

    // a point with its losses divided by scale, for a spread drawn on a normalised axis
    private static SweepReport.Point scaled(SweepReport.Point p, double scale) {
        return new SweepReport.Point(p.run(), p.loss() / scale, p.low() / scale, p.high() / scale, p.seeds(), p.seconds(), p.stepMs());
    }

    /**
     * Every point of the sweep, isoFLOP runs and ablations: held-out loss against the FLOPs of one forward pass, the
     * paper's normalised view (its Figure 4, right): a variant is better where it reaches a lower loss for fewer FLOPs
     * per forward pass, whatever its budget.
     */
    static void everyPointAgainstForwardFlops(SweepReport report, Path png) {
        List<Line> lines = curvesAgainst(report, SweepReport.Point::forwardFlops, p -> true);
        int hue = lines.stream().mapToInt(Line::hue).max().orElse(-1) + 1;
        List<SweepReport.Point> ablations = report.ablation().stream().filter(p -> !p.run().isoFlop()).toList();
        if (!ablations.isEmpty()) {
            lines.add(spread(new Line("ablations", ablations.stream().mapToDouble(SweepReport.Point::forwardFlops).toArray(),
                    ablations.stream().mapToDouble(SweepReport.Point::loss).toArray(), hue, Look.POINTS)
                    .withLabels(ablations.stream().map(p -> label(p.run(), report.spec())).toArray(String[]::new)), ablations));
        }
        Charts.lines("Every run: held-out loss against FLOPs per forward pass",
                subtitle(report) + "; each curve one budget's sizes, lower-left is better",
                new Axis("FLOPs per forward pass (one sequence of " + report.spec().seqLen() + " tokens)", true),
                new Axis("held-out loss (nats per byte)", false), lines, png);
    }

    /** Held-out loss against training wall-clock time, per budget: what the FLOP-matched view leaves out. */
    static void lossAgainstTrainingTime(SweepReport report, Path png) {
        List<Line> lines = curvesAgainst(report, report::seconds, report::timedAlike);
        Charts.lines("Held-out loss against training time", subtitle(report) + (report.timedInOneSitting()
                        ? "; steps x step time of one sitting (step_times.json), settings it did not time left out"
                        : "; seconds on the machine and threads of "
                        + "runs.csv, the mean over seeds") + "; lower-left is better",
                new Axis("training time (s)", true), new Axis("held-out loss (nats per byte)", false), lines, png);
    }

    /**
     * A budget's curve of one variant as drawn: dense dashed and MoD solid in the budget's hue, a curve at another
     * capacity solid in a hue of its own after the budgets'.
     */
    private record Curve(double budget, String variant, String name, int hue, Look look) {
    }

    // every curve of the report, budget by budget: dense, MoD, then the curves at other capacities
    private static List<Curve> curves(SweepReport report) {
        List<Double> budgets = report.spec().budgets();
        List<Curve> curves = new ArrayList<>();
        int otherHue = budgets.size();
        for (int b = 0; b < budgets.size(); b++) {
            double budget = budgets.get(b);
            String flops = SweepRun.number(budget) + " FLOPs";
            curves.add(new Curve(budget, "dense", "dense, " + flops, b, Look.DASHED));
            curves.add(new Curve(budget, "mod", "MoD, " + flops, b, Look.SOLID));
            SweepSpec.CapacityCurves other = report.spec().capacityCurves();
            for (double capacity : other != null && other.at(budget) ? other.capacities() : List.<Double>of()) {
                curves.add(new Curve(budget, SweepRun.capacityVariant(capacity), "MoD " + percent(capacity) + ", " + flops,
                        otherHue++, Look.SOLID));
            }
        }
        return curves;
    }

    // each curve's points that drawn accepts, their losses against x, in the order of x
    private static List<Line> curvesAgainst(SweepReport report, ToDoubleFunction<SweepReport.Point> x,
                                            Predicate<SweepReport.Point> drawn) {
        List<Line> lines = new ArrayList<>();
        for (Curve c : curves(report)) {
            List<SweepReport.Point> curve = report.curve(c.budget(), c.variant()).stream().filter(drawn)
                    .sorted(Comparator.comparingDouble(x)).toList();
            lines.add(spread(new Line(c.name(), curve.stream().mapToDouble(x).toArray(),
                    curve.stream().mapToDouble(SweepReport.Point::loss).toArray(), c.hue(), c.look()), curve));
        }
        return lines;
    }

    /**
     * Held-out loss against parameters, per budget: dense dashed, MoD solid (and MoD at other capacities), each with its
     * fitted parabola and minimum.
     */
    static void isoFlop(SweepReport report, Path png) {
        List<Line> lines = new ArrayList<>();
        for (Curve c : curves(report)) {
            List<SweepReport.Point> curve = report.curve(c.budget(), c.variant());
            lines.add(spread(new Line(c.name(), curve.stream().mapToDouble(SweepReport.Point::params).toArray(),
                    curve.stream().mapToDouble(SweepReport.Point::loss).toArray(), c.hue(), c.look()), curve));
            SweepReport.Optimum o = report.optimum(c.budget(), c.variant());
            if (o != null && o.fit() != null) {
                double lo = Math.log10(curve.getFirst().params());
                double hi = Math.log10(curve.getLast().params());
                double[] x = new double[41];
                double[] y = new double[41];
                for (int i = 0; i < x.length; i++) {
                    x[i] = Math.pow(10, lo + (hi - lo) * i / (x.length - 1));
                    y[i] = o.fit().loss(x[i]);
                }
                lines.add(new Line(c.name() + " fit", x, y, c.hue(), Look.THIN));
                if (o.fit().optimalParams() != null) {
                    lines.add(new Line(c.name() + " minimum", new double[] {o.fit().optimalParams()},
                            new double[] {o.fit().optimalLoss()}, c.hue(), Look.RING));
                }
            }
        }
        Charts.lines("isoFLOP curves: held-out loss against model size at equal training FLOPs",
                subtitle(report) + "; dotted: parabola fit in log(params), ring: its minimum",
                new Axis("parameters", true), new Axis("held-out loss (nats per byte, top-k routing)", false), lines, png);
    }

    /** The best dense and MoD run of each budget: held-out loss against the FLOPs of one forward pass. */
    static void lossAgainstForwardFlops(SweepReport report, Path png) {
        List<Line> lines = new ArrayList<>();
        for (boolean dense : new boolean[] {true, false}) {
            List<SweepReport.Point> best = new ArrayList<>();
            List<String> labels = new ArrayList<>();
            for (double budget : report.spec().budgets()) {
                SweepReport.Optimum o = report.optimum(budget, dense);
                if (o != null) {
                    best.add(o.best());
                    labels.add(SweepRun.number(budget) + " (" + (dense ? "dense" : "MoD") + ")");
                }
            }
            lines.add(spread(new Line(dense ? "dense, best per budget" : "MoD, best per budget",
                    best.stream().mapToDouble(SweepReport.Point::forwardFlops).toArray(),
                    best.stream().mapToDouble(SweepReport.Point::loss).toArray(), dense ? 0 : 2, dense ? Look.DASHED : Look.SOLID)
                    .withLabels(labels.toArray(new String[0])), best));
        }
        Charts.lines("Loss against FLOPs per forward pass at each budget's optimum",
                subtitle(report) + "; one point per budget, labelled with its training FLOPs",
                new Axis("FLOPs per forward pass (one sequence of " + report.spec().seqLen() + " tokens)", true),
                new Axis("held-out loss (nats per byte)", false), lines, png);
    }

    /** Held-out loss of the ablation runs beside the dense and MoD runs of the same budget and size. */
    static void ablations(SweepReport report, Path png) {
        List<SweepReport.Point> rows = report.ablation();
        List<String> names = new ArrayList<>();
        double[] values = new double[rows.size()];
        for (int i = 0; i < rows.size(); i++) {
            names.add(label(rows.get(i).run(), report.spec()));
            values[i] = rows.get(i).loss();
        }
        SweepSpec.Ablation a = report.spec().ablation();
        Charts.bars("Routing ablations: held-out loss at equal training FLOPs",
                a == null ? "no ablations in this spec" : subtitle(report) + "; size " + a.size() + " at "
                        + SweepRun.number(a.budget()) + " FLOPs; top-k routing as trained",
                "held-out loss (nats per byte)", names, values, png);
    }

    /** Each MoD run's held-out loss with the causal rules against its loss with top-k routing. */
    static void causalEvaluation(SweepReport report, Path png) {
        List<SweepResult> learned = report.results().stream().filter(r -> r.evalLossRouter() != null).toList();
        List<SweepResult> predicted = report.results().stream().filter(r -> r.evalLossPredictor() != null).toList();
        double lo = Double.POSITIVE_INFINITY;
        double hi = Double.NEGATIVE_INFINITY;
        for (SweepResult r : learned) {
            lo = Math.min(lo, Math.min(r.evalLoss(), r.evalLossRouter()));
            hi = Math.max(hi, Math.max(r.evalLoss(), r.evalLossRouter()));
        }
        List<Line> lines = new ArrayList<>();
        lines.add(new Line("router rule, sigmoid(r) > 0.5", learned.stream().mapToDouble(SweepResult::evalLoss).toArray(),
                learned.stream().mapToDouble(SweepResult::evalLossRouter).toArray(), 2, Look.POINTS));
        lines.add(new Line("predictor", predicted.stream().mapToDouble(SweepResult::evalLoss).toArray(),
                predicted.stream().mapToDouble(SweepResult::evalLossPredictor).toArray(), 4, Look.POINTS));
        if (lo <= hi) {
            lines.add(new Line("equal", new double[] {lo, hi}, new double[] {lo, hi}, 0, Look.THIN));
        }
        Charts.lines("Switching from top-k to causal routing: held-out loss of every MoD run",
                subtitle(report) + "; dotted: equal loss, points above it lose by switching",
                new Axis("held-out loss with top-k routing", false), new Axis("held-out loss with the causal rule", false), lines, png);
    }

    // the line with each point's lowest and highest loss over its seeds, where some point has more than one
    private static Line spread(Line line, List<SweepReport.Point> points) {
        if (points.stream().allMatch(p -> p.seeds() == 1)) {
            return line;
        }
        return line.withSpread(points.stream().mapToDouble(SweepReport.Point::low).toArray(),
                points.stream().mapToDouble(SweepReport.Point::high).toArray());
    }

    private static String label(SweepResult r, SweepSpec spec) {
        String percent = r.capacity() == null ? "" : percent(r.capacity());
        return switch (r.variant()) {
            case "dense" -> "dense";
            case "mod" -> "MoD " + percent + ", every other";
            case "mod-every-block" -> "MoD " + percent + ", every block";
            case "mod-stochastic" -> "stochastic " + percent + ", every other";
            case "mod-gaussian" -> "Gaussian control " + percent + ", every other";
            default -> "MoD " + percent + ", every other";
        };
    }

    // a capacity as a percentage: 12.5%, 50%
    private static String percent(double capacity) {
        return String.format(Locale.ROOT, "%.1f%%", 100 * capacity).replace(".0%", "%");
    }

    private static String subtitle(SweepReport report) {
        SweepSpec s = report.spec();
        return String.format(Locale.ROOT, "%s, %d x %d bytes per step, held-out: %d windows", s.data(), s.batch(), s.seqLen(),
                s.batch() * s.evalBatches());
    }
}
