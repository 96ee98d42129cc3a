package dev.mod.study;

import dev.mod.io.AtomicFiles;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

import java.nio.file.Path;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.function.ToDoubleFunction;

/** PNG plots of studies (JFreeChart), drawn headless. */
public final class StudyPlots {
    private StudyPlots() {
    }

    /** A study's rows under a label, for plots that put several studies side by side. */
    public record Labelled(String label, List<StudyRow> rows) {
    }

    /**
     * MoD time / dense time against capacity at sequence length T, one line per device (and study),
     * beside the ideal: MoD FLOPs / dense FLOPs.
     */
    public static void timeAgainstCapacity(List<Labelled> studies, int seqLen, Path png) {
        XYSeriesCollection data = lines(studies, r -> r.seqLen() == seqLen && r.capacity() != null,
                StudyRow::capacity, r -> 1 / r.speedup(), r -> 1 / r.idealSpeedup());
        save(ChartFactory.createXYLineChart("MoD forward time / dense, T = " + seqLen, "capacity",
                "time / dense time", data, PlotOrientation.VERTICAL, true, false, false), png);
    }

    /** Speedup over dense against sequence length at one capacity, one line per device (and study). */
    public static void speedupAgainstSeqLen(List<Labelled> studies, double capacity, Path png) {
        XYSeriesCollection data = lines(studies, r -> r.capacity() != null && r.capacity() == capacity,
                StudyRow::seqLen, StudyRow::speedup, StudyRow::idealSpeedup);
        save(ChartFactory.createXYLineChart("MoD speedup over dense, capacity " + capacity, "sequence length T",
                "dense time / MoD time", data, PlotOrientation.VERTICAL, true, false, false), png);
    }

    /** Decode-step speedup over dense against context length at one capacity, one line per device (and study). */
    public static void decodeSpeedupAgainstSeqLen(List<Labelled> studies, double capacity, Path png) {
        XYSeriesCollection data = lines(studies, r -> r.capacity() != null && r.capacity() == capacity
                        && r.decode() != null && r.decode().speedup() != null,
                StudyRow::seqLen, r -> r.decode().speedup(), null);
        save(ChartFactory.createXYLineChart("MoD decode-step speedup over dense, capacity " + capacity, "context T",
                "dense step time / MoD step time", data, PlotOrientation.VERTICAL, true, false, false), png);
    }

    /**
     * One line per study and device through the measured rows that `keep` accepts, at (x, y), and a last
     * line "ideal (FLOPs)" at (x, ideal) unless ideal is null.
     */
    private static XYSeriesCollection lines(List<Labelled> studies, Predicate<StudyRow> keep, ToDoubleFunction<StudyRow> x,
                                            ToDoubleFunction<StudyRow> y, ToDoubleFunction<StudyRow> ideal) {
        XYSeriesCollection data = new XYSeriesCollection();
        XYSeries idealLine = new XYSeries("ideal (FLOPs)");
        for (Labelled study : studies) {
            for (Map.Entry<String, List<StudyRow>> device : byDevice(study.rows()).entrySet()) {
                XYSeries line = new XYSeries(name(study, device.getKey(), studies.size()));
                for (StudyRow r : device.getValue()) {
                    if (keep.test(r) && r.speedup() != null) {
                        line.add(x.applyAsDouble(r), y.applyAsDouble(r));
                        if (ideal != null && idealLine.indexOf(x.applyAsDouble(r)) < 0) {
                            idealLine.add(x.applyAsDouble(r), ideal.applyAsDouble(r));
                        }
                    }
                }
                if (line.getItemCount() > 0) {
                    data.addSeries(line);
                }
            }
        }
        if (ideal != null) {
            data.addSeries(idealLine);
        }
        return data;
    }

    private static Map<String, List<StudyRow>> byDevice(List<StudyRow> rows) {
        Map<String, List<StudyRow>> devices = new LinkedHashMap<>();
        rows.stream().sorted(Comparator.comparing((Function<StudyRow, Integer>) StudyRow::seqLen))
                .forEach(r -> devices.computeIfAbsent(r.device(), d -> new java.util.ArrayList<>()).add(r));
        return devices;
    }

    private static String name(Labelled study, String device, int studies) {
        return studies == 1 ? device : study.label() + ": " + device;
    }

    private static void save(JFreeChart chart, Path png) {
        System.setProperty("java.awt.headless", "true");
        AtomicFiles.write(png, out -> ChartUtils.writeChartAsPNG(out, chart, 900, 560));
    }
}
