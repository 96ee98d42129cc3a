package dev.mod.train;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mod.plot.Charts;
import dev.mod.plot.Charts.Axis;
import dev.mod.plot.Charts.Line;
import dev.mod.plot.Charts.Look;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Loss curves of training runs as PNG, in the project's one chart style (Charts). */
public final class TrainPlots {
    private TrainPlots() {
    }

    /** A run's log lines under a label. */
    public record Run(String label, List<JsonNode> log) {
    }

    /**
     * Training cross-entropy (mean over each 1/50 of the run, to smooth it; dashed) and held-out loss (solid) of
     * each run in one colour per run, against the step, or against the training FLOPs spent (log scale: for
     * runs whose steps cost differently, such as MoD and dense at equal training compute).
     */
    public static void lossCurves(List<Run> runs, boolean againstFlops, Path png) {
        List<Line> lines = new ArrayList<>();
        int hue = 0;
        for (Run run : runs) {
            String prefix = runs.size() == 1 ? "" : run.label() + ": ";
            List<JsonNode> steps = run.log().stream().filter(l -> l.has("cross_entropy")).toList();
            int window = Math.max(1, steps.size() / 50);
            List<double[]> train = new ArrayList<>();
            for (int i = 0; i + window <= steps.size(); i += window) {
                double sum = 0;
                for (int j = i; j < i + window; j++) {
                    sum += steps.get(j).get("cross_entropy").asDouble();
                }
                train.add(new double[] {x(steps.get(i + window - 1), againstFlops), sum / window});
            }
            List<double[]> eval = run.log().stream().filter(l -> l.has("eval_loss"))
                    .map(l -> new double[] {x(l, againstFlops), l.get("eval_loss").asDouble()}).toList();
            lines.add(line(prefix + "train loss", train, hue, Look.DASHED));
            lines.add(line(prefix + "held-out loss", eval, hue, Look.SOLID));
            hue++;
        }
        String what = runs.size() == 1 ? runs.getFirst().label() : runs.size() + " runs";
        Charts.lines("Training and held-out loss, " + what, "training loss: mean of each 1/50 of the run (dashed); held-out: solid",
                new Axis(againstFlops ? "training FLOPs" : "step", againstFlops), new Axis("cross-entropy (nats per byte)", false),
                lines, png);
    }

    private static Line line(String name, List<double[]> points, int hue, Look look) {
        return new Line(name, points.stream().mapToDouble(p -> p[0]).toArray(), points.stream().mapToDouble(p -> p[1]).toArray(),
                hue, look);
    }

    private static double x(JsonNode line, boolean againstFlops) {
        return againstFlops ? line.get("train_flops").asDouble() : line.get("step").asDouble();
    }
}
