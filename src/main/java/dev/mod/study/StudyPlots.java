package dev.mod.study;

import dev.mod.plot.Charts;
import dev.mod.plot.Charts.Axis;
import dev.mod.plot.Charts.Line;
import dev.mod.plot.Charts.Look;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.function.ToDoubleFunction;

/** PNG plots of studies, in the project's one chart style (Charts). */
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
        Charts.lines("MoD forward time / dense time against capacity, T = " + seqLen, subtitle(studies),
                new Axis("capacity", false), new Axis("time / dense time", false, 1.0),
                lines(studies, r -> r.seqLen() == seqLen && r.capacity() != null, StudyRow::capacity,
                        r -> 1 / r.speedup(), r -> r.minMs() / (r.speedup() * r.medianMs()), r -> r.maxMs() / (r.speedup() * r.medianMs()),
                        r -> 1 / r.idealSpeedup()), png);
    }

    /** Speedup over dense against sequence length at one capacity, one line per device (and study). */
    public static void speedupAgainstSeqLen(List<Labelled> studies, double capacity, Path png) {
        Charts.lines("MoD forward speedup over dense against sequence length, capacity " + capacity, subtitle(studies),
                new Axis("sequence length T", true), new Axis("dense time / MoD time", false, 1.0),
                lines(studies, r -> r.capacity() != null && r.capacity() == capacity, StudyRow::seqLen,
                        StudyRow::speedup, r -> r.speedup() * r.medianMs() / r.maxMs(), r -> r.speedup() * r.medianMs() / r.minMs(),
                        StudyRow::idealSpeedup), png);
    }

    /** Whether any row has a decode measurement with a speedup, which the decode plot needs. */
    public static boolean hasDecode(List<Labelled> studies) {
        return studies.stream().flatMap(s -> s.rows().stream()).anyMatch(r -> r.decode() != null && r.decode().speedup() != null);
    }

    /** Decode-step speedup over dense against context length at one capacity, one line per device (and study). */
    public static void decodeSpeedupAgainstSeqLen(List<Labelled> studies, double capacity, Path png) {
        Charts.lines("MoD decode-step speedup over dense against context, capacity " + capacity, subtitle(studies),
                new Axis("context T", true), new Axis("dense step time / MoD step time", false, 1.0),
                lines(studies, r -> r.capacity() != null && r.capacity() == capacity && r.decode() != null
                        && r.decode().speedup() != null, StudyRow::seqLen, r -> r.decode().speedup(),
                        r -> r.decode().speedup() * r.decode().medianMs() / r.decode().maxMs(),
                        r -> r.decode().speedup() * r.decode().medianMs() / r.decode().minMs(), null), png);
    }

    /**
     * One line per study and device through the measured rows that `keep` accepts, at (x, y) with a bar from low to
     * high, and a last dashed line "ideal (FLOPs)" at (x, ideal) unless ideal is null.
     */
    private static List<Line> lines(List<Labelled> studies, Predicate<StudyRow> keep, ToDoubleFunction<StudyRow> x,
                                    ToDoubleFunction<StudyRow> y, ToDoubleFunction<StudyRow> low, ToDoubleFunction<StudyRow> high,
                                    ToDoubleFunction<StudyRow> ideal) {
        List<Line> lines = new ArrayList<>();
        Map<Double, Double> idealPoints = new TreeMap<>();
        int hue = 1;
        for (Labelled study : studies) {
            for (Map.Entry<String, List<StudyRow>> device : byDevice(study.rows()).entrySet()) {
                List<StudyRow> rows = device.getValue().stream().filter(r -> keep.test(r) && r.speedup() != null)
                        .sorted(Comparator.comparingDouble(x)).toList();
                lines.add(new Line(name(study, device.getKey(), studies.size()), rows.stream().mapToDouble(x).toArray(),
                        rows.stream().mapToDouble(y).toArray(), hue++, Look.SOLID)
                        .withSpread(rows.stream().mapToDouble(low).toArray(), rows.stream().mapToDouble(high).toArray()));
                if (ideal != null) {
                    rows.forEach(r -> idealPoints.putIfAbsent(x.applyAsDouble(r), ideal.applyAsDouble(r)));
                }
            }
        }
        if (ideal != null) {
            lines.add(new Line("ideal (FLOPs)", idealPoints.keySet().stream().mapToDouble(Double::doubleValue).toArray(),
                    idealPoints.values().stream().mapToDouble(Double::doubleValue).toArray(), 0, Look.DASHED));
        }
        return lines;
    }

    private static Map<String, List<StudyRow>> byDevice(List<StudyRow> rows) {
        Map<String, List<StudyRow>> devices = new LinkedHashMap<>();
        rows.stream().sorted(Comparator.comparing((Function<StudyRow, Integer>) StudyRow::seqLen))
                .forEach(r -> devices.computeIfAbsent(r.device(), d -> new ArrayList<>()).add(r));
        return devices;
    }

    private static String name(Labelled study, String device, int studies) {
        return studies == 1 ? device : study.label() + ": " + device;
    }

    private static String subtitle(List<Labelled> studies) {
        String bars = "; bars: MoD's fastest and slowest timed run against dense's median; grey: 1, no change";
        return studies.size() == 1 ? "median of the timed runs, dense model of the same weights as the baseline" + bars
                : studies.size() + " studies; median of the timed runs, each study's dense model as its baseline" + bars;
    }
}
