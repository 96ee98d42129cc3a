package dev.mod.train;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mod.io.AtomicFiles;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

import java.nio.file.Path;
import java.util.List;

/** Loss curves of training runs as PNG (JFreeChart, headless). */
public final class TrainPlots {
    private TrainPlots() {
    }

    /** A run's log lines under a label. */
    public record Run(String label, List<JsonNode> log) {
    }

    /**
     * Training cross-entropy (mean over each 1/50 of the run, to smooth it) and held-out loss of each run, against
     * the step, or against the training FLOPs spent (for runs whose steps cost differently, such as MoD and
     * dense at equal training compute).
     */
    public static void lossCurves(List<Run> runs, boolean againstFlops, Path png) {
        XYSeriesCollection data = new XYSeriesCollection();
        for (Run run : runs) {
            String prefix = runs.size() == 1 ? "" : run.label() + ": ";
            XYSeries train = new XYSeries(prefix + "train loss");
            XYSeries eval = new XYSeries(prefix + "held-out loss");
            List<JsonNode> steps = run.log().stream().filter(l -> l.has("cross_entropy")).toList();
            int window = Math.max(1, steps.size() / 50);
            for (int i = 0; i + window <= steps.size(); i += window) {
                double sum = 0;
                for (int j = i; j < i + window; j++) {
                    sum += steps.get(j).get("cross_entropy").asDouble();
                }
                JsonNode last = steps.get(i + window - 1);
                train.add(x(last, againstFlops), sum / window);
            }
            for (JsonNode line : run.log()) {
                if (line.has("eval_loss")) {
                    eval.add(x(line, againstFlops), line.get("eval_loss").asDouble());
                }
            }
            data.addSeries(train);
            data.addSeries(eval);
        }
        JFreeChart chart = ChartFactory.createXYLineChart("loss", againstFlops ? "training FLOPs" : "step",
                "cross-entropy (nats per byte)", data, PlotOrientation.VERTICAL, true, false, false);
        ((org.jfree.chart.axis.NumberAxis) chart.getXYPlot().getRangeAxis()).setAutoRangeIncludesZero(false);
        System.setProperty("java.awt.headless", "true");
        AtomicFiles.write(png, out -> ChartUtils.writeChartAsPNG(out, chart, 900, 560));
    }

    private static double x(JsonNode line, boolean againstFlops) {
        return againstFlops ? line.get("train_flops").asDouble() : line.get("step").asDouble();
    }
}
