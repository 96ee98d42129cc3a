package dev.mod.study;

import dev.mod.ModException;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelCost;
import dev.mod.plan.ForwardPass;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Consumer;
import java.util.zip.CRC32;

/**
 * Runs a study: for every device x sequence length, the dense model and then the MoD model at each
 * capacity, each timed as prefill forward passes (warm-up, then timed repeats; median and range) and as
 * decode steps at context T (causal routing, the calibrated rule set to the row's capacity). The
 * study file and its CSV are rewritten after every row, so that an interrupted study keeps its finished
 * rows and --resume goes on from there. A device that fails reports the error in its row and the study
 * goes on.
 */
public final class StudyRunner {
    private final StudySettings settings;
    private final Model model;
    private final Map<String, Object> environment;
    private final Path jsonOut;
    private final Path csvOut;

    public StudyRunner(StudySettings settings, Model model, Map<String, Object> environment, Path outDir) {
        this.settings = settings;
        this.model = model;
        this.environment = environment;
        this.jsonOut = outDir.resolve("study.json");
        this.csvOut = outDir.resolve("rows.csv");
        if (model.config().routedLayers().isEmpty()) {
            throw new ModException("the model has no routed layers: a study compares MoD with its dense counterpart");
        }
        for (int t : settings.seqLens()) {
            if (t < 1 || t > model.config().maxSeqLen()) {
                throw new ModException("sequence length " + t + " is outside [1, max_seq_len = " + model.config().maxSeqLen() + "]");
            }
        }
        for (double c : settings.capacities()) {
            if (!(c > 0 && c <= 1)) {
                throw new ModException("capacity " + c + " is outside (0, 1]");
            }
        }
    }

    /** Rows of a full study, in the order they are measured. */
    public int rowCount() {
        return settings.devices().size() * settings.seqLens().size() * (settings.capacities().size() + 1);
    }

    /**
     * Measures every row not already in `done` (rows of an interrupted run of the same study); after each
     * group of rows (one device and sequence length), the file is written and `afterRow` is told of each
     * row. Returns the finished study.
     */
    public StudyFile run(List<StudyDevice> devices, List<StudyRow> done, Consumer<StudyRow> afterRow) {
        Map<String, StudyRow> finished = new LinkedHashMap<>();
        done.forEach(r -> finished.put(r.key(), r));
        List<StudyRow> rows = new ArrayList<>();
        for (StudyDevice device : devices) {
            warmUp(device);
            for (int seqLen : settings.seqLens()) {
                List<Double> capacities = new ArrayList<>();
                capacities.add(null);
                capacities.addAll(settings.capacities());
                List<Double> todo = capacities.stream().filter(c -> !finished.containsKey(key(device, seqLen, c))).toList();
                Map<Double, Measurement> measured = measureGroup(device, seqLen, todo);
                Map<Double, DecodeTimer.Measurement> decoded = new DecodeTimer(settings, model).measureGroup(device, seqLen, todo);
                StudyRow dense = null;
                List<StudyRow> group = new ArrayList<>();
                for (Double capacity : capacities) {
                    StudyRow row = finished.get(key(device, seqLen, capacity));
                    if (row == null) {
                        row = row(device, seqLen, capacity, measured.get(capacity), decoded.get(capacity), dense);
                    }
                    if (capacity == null) {
                        dense = row;
                    }
                    group.add(row);
                }
                rows.addAll(group);
                StudyFile file = new StudyFile(StudyFile.SCHEMA, settings, environment, mergedRows(rows, finished));
                file.write(jsonOut);
                file.writeCsv(csvOut);
                group.forEach(afterRow);
            }
        }
        return new StudyFile(StudyFile.SCHEMA, settings, environment, rows);
    }

    private static String key(StudyDevice device, int seqLen, Double capacity) {
        return device.id() + "|" + seqLen + "|" + (capacity == null ? "dense" : capacity.toString());
    }

    /** The timed runs of one row (or why it has none), its routing checksum and the bytes it moved. */
    private record Measurement(double[] ms, Long hostDeviceBytes, String routingChecksum, long peakHeap, String error) {
    }

    /** This run's rows, then rows of the earlier run that this one has not reached yet. */
    private static List<StudyRow> mergedRows(List<StudyRow> rows, Map<String, StudyRow> earlier) {
        List<StudyRow> all = new ArrayList<>(rows);
        Map<String, Boolean> seen = new HashMap<>();
        rows.forEach(r -> seen.put(r.key(), true));
        earlier.values().stream().filter(r -> !seen.containsKey(r.key())).forEach(all::add);
        return all;
    }

    /**
     * Runs the MoD model at the smallest capacity and the dense model at the longest sequence on the device
     * for three times the per-row warm-up: the first rows would otherwise time the JIT compiling the
     * kernels. A device that fails here fails again in its rows, which report the error.
     */
    private void warmUp(StudyDevice device) {
        if (settings.warmupSeconds() <= 0) {
            return;
        }
        double seconds = 3 * settings.warmupSeconds();
        int seqLen = settings.seqLens().stream().max(Integer::compare).orElseThrow();
        double smallest = settings.capacities().stream().min(Double::compare).orElseThrow();
        int[][] tokens = tokens(settings.seed(), model.config().vocabSize(), settings.batch(), seqLen, 0);
        long end = System.nanoTime() + (long) (seconds * 1e9);
        for (Double capacity : new Double[] {smallest, null}) {
            try (ForwardPass pass = device.open(modelFor(model, capacity), settings.batch(), seqLen)) {
                do {
                    pass.run(tokens);
                } while (System.nanoTime() < (capacity == null ? end : end - (long) (seconds * 0.5e9)));
            } catch (RuntimeException | LinkageError | OutOfMemoryError e) {
                return;
            }
        }
    }

    /** The model a row measures: the dense counterpart, or the model routed at the capacity. */
    static Model modelFor(Model model, Double capacity) {
        ModelConfig c = model.config();
        return capacity == null ? model.asDense() : model.withConfig(c.withRouting(capacity, c.routedLayers()));
    }

    /**
     * Times the rows of one device and sequence length together: every pass is opened and warmed up, then
     * the timed runs go round-robin over the passes, so that a machine that slows down or speeds up during
     * the group (a shared, noisy machine) shifts every row alike and the ratios to dense hold.
     */
    private Map<Double, Measurement> measureGroup(StudyDevice device, int seqLen, List<Double> capacities) {
        Map<Double, Measurement> result = new HashMap<>();
        Map<Double, ForwardPass> passes = new LinkedHashMap<>();
        int[][] tokens = tokens(settings.seed(), model.config().vocabSize(), settings.batch(), seqLen, 0);
        resetPeakHeap();
        try {
            for (Double capacity : capacities) {
                try {
                    ForwardPass pass = device.open(modelFor(model, capacity), settings.batch(), seqLen);
                    pass.keepRoutingOutputs(false);
                    pass.countTransfers(false);
                    passes.put(capacity, pass);
                    long warmupEnd = System.nanoTime() + (long) (settings.warmupSeconds() * 1e9);
                    do {
                        pass.run(tokens);
                    } while (System.nanoTime() < warmupEnd);
                } catch (RuntimeException | LinkageError | OutOfMemoryError e) {
                    // A device that fails (compile error, lost device, out of memory) is reported in its row.
                    closeQuietly(passes.remove(capacity));
                    result.put(capacity, new Measurement(null, null, null, 0, oneLine(e)));
                }
            }
            Map<Double, double[]> ms = new HashMap<>();
            passes.keySet().forEach(c -> ms.put(c, new double[settings.repeats()]));
            for (int i = 0; i < settings.repeats(); i++) {
                for (Map.Entry<Double, ForwardPass> e : passes.entrySet()) {
                    if (result.containsKey(e.getKey())) {
                        continue;
                    }
                    try {
                        long start = System.nanoTime();
                        e.getValue().run(tokens);
                        ms.get(e.getKey())[i] = (System.nanoTime() - start) / 1e6;
                    } catch (RuntimeException | LinkageError | OutOfMemoryError failure) {
                        result.put(e.getKey(), new Measurement(null, null, null, 0, oneLine(failure)));
                    }
                }
            }
            long peak = peakHeap();
            for (Map.Entry<Double, ForwardPass> e : passes.entrySet()) {
                if (!result.containsKey(e.getKey())) {
                    ForwardPass pass = e.getValue();
                    // Two more, untimed runs: one counts the bytes a run moves, one keeps the selections for the
                    // checksum that compares devices.
                    pass.countTransfers(true);
                    pass.run(tokens);
                    Long moved = pass.hostDeviceBytes();
                    pass.keepRoutingOutputs(true);
                    pass.run(tokens);
                    result.put(e.getKey(), new Measurement(ms.get(e.getKey()), moved, routingChecksum(pass), peak, null));
                }
            }
        } finally {
            passes.values().forEach(StudyRunner::closeQuietly);
        }
        return result;
    }

    private static void closeQuietly(ForwardPass pass) {
        if (pass != null) {
            try {
                pass.close();
            } catch (RuntimeException e) {
                // The pass already failed; its row reports that failure.
            }
        }
    }

    static String oneLine(Throwable e) {
        String message = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        return message.lines().findFirst().orElse(message);
    }

    private StudyRow row(StudyDevice device, int seqLen, Double capacity, Measurement m, DecodeTimer.Measurement d, StudyRow dense) {
        ModelConfig c = modelFor(model, capacity).config();
        int batch = settings.batch();
        double flops = batch * ModelCost.forwardFlops(c, seqLen);
        double ideal = batch * ModelCost.forwardFlops(c.dense(), seqLen) / flops;
        double kvBytes = ModelCost.kvCacheBytesPerToken(c) * seqLen * batch;
        if (m.error() != null) {
            return new StudyRow(device.id(), capacity, seqLen, batch, flops, ideal, null, null, null, null, null, null,
                    kvBytes, null, null, null, m.error(), decodeResult(d, dense));
        }
        double[] ms = m.ms().clone();
        Arrays.sort(ms);
        double median = median(ms);
        Double speedup = dense == null || dense.failed() ? null : dense.medianMs() / median;
        return new StudyRow(device.id(), capacity, seqLen, batch, flops, ideal, median, ms[0], ms[ms.length - 1],
                speedup, speedup == null ? null : speedup / ideal, batch * seqLen / (median / 1e3), kvBytes,
                m.hostDeviceBytes(), m.peakHeap(), m.routingChecksum(), null, decodeResult(d, dense));
    }

    private StudyDecode decodeResult(DecodeTimer.Measurement d, StudyRow dense) {
        if (d == null) {
            return null;
        }
        if (d.error() != null) {
            return StudyDecode.failed(d.error());
        }
        double median = median(d.ms());
        StudyDecode denseDecode = dense == null ? null : dense.decode();
        Double speedup = denseDecode == null || denseDecode.medianMs() == null ? null : denseDecode.medianMs() / median;
        return new StudyDecode(median, Arrays.stream(d.ms()).min().orElseThrow(), Arrays.stream(d.ms()).max().orElseThrow(),
                speedup, settings.batch() / (median / 1e3), d.routedFraction(), d.kvBytes(), d.denseKvBytes(), null);
    }

    /** The median of values (the mean of the middle two for an even count). */
    public static double median(double[] values) {
        double[] v = values.clone();
        Arrays.sort(v);
        return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    }

    /**
     * Random tokens, the same for every device, capacity and run of a study with this seed; stream 0 is what
     * the rows measure, stream 1 the calibration text of the decode rows.
     */
    static int[][] tokens(long seed, int vocab, int batch, int seqLen, int stream) {
        SplittableRandom random = new SplittableRandom(seed * 31 + seqLen + 0x9E3779B97F4A7C15L * stream);
        int[][] tokens = new int[batch][seqLen];
        for (int[] row : tokens) {
            for (int t = 0; t < seqLen; t++) {
                row[t] = random.nextInt(vocab);
            }
        }
        return tokens;
    }

    /** CRC32 of every routed layer's selected positions: equal checksums, equal routing decisions. */
    private static String routingChecksum(ForwardPass pass) {
        if (pass.routedLayers().isEmpty()) {
            return null;
        }
        CRC32 crc = new CRC32();
        for (int layer : pass.routedLayers()) {
            int[] selected = pass.selected(layer);
            ByteBuffer bytes = ByteBuffer.allocate(selected.length * Integer.BYTES);
            bytes.asIntBuffer().put(selected);
            crc.update(bytes.array());
        }
        return String.format("%08x", crc.getValue());
    }

    private static void resetPeakHeap() {
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            if (pool.getType() == MemoryType.HEAP) {
                pool.resetPeakUsage();
            }
        }
    }

    private static long peakHeap() {
        long peak = 0;
        for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
            if (pool.getType() == MemoryType.HEAP) {
                peak += pool.getPeakUsage().getUsed();
            }
        }
        return peak;
    }
}
