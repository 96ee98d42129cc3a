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
 * capacity, each timed as prefill forward passes (warm-up, then timed repeats; median and range). The
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
     * row, the file is written and `afterRow` is told. Returns the finished study.
     */
    public StudyFile run(List<StudyDevice> devices, List<StudyRow> done, Consumer<StudyRow> afterRow) {
        Map<String, StudyRow> finished = new LinkedHashMap<>();
        done.forEach(r -> finished.put(r.key(), r));
        List<StudyRow> rows = new ArrayList<>();
        for (StudyDevice device : devices) {
            warmUp(device);
            for (int seqLen : settings.seqLens()) {
                StudyRow dense = null;
                List<Double> capacities = new ArrayList<>();
                capacities.add(null);
                capacities.addAll(settings.capacities());
                for (Double capacity : capacities) {
                    String key = device.id() + "|" + seqLen + "|" + (capacity == null ? "dense" : capacity.toString());
                    StudyRow row = finished.get(key);
                    if (row == null) {
                        row = measure(device, seqLen, capacity, dense);
                    }
                    if (capacity == null) {
                        dense = row;
                    }
                    rows.add(row);
                    StudyFile file = new StudyFile(StudyFile.SCHEMA, settings, environment, mergedRows(rows, finished));
                    file.write(jsonOut);
                    file.writeCsv(csvOut);
                    afterRow.accept(row);
                }
            }
        }
        return new StudyFile(StudyFile.SCHEMA, settings, environment, rows);
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
        int[][] tokens = tokens(model.config().vocabSize(), settings.batch(), seqLen);
        long end = System.nanoTime() + (long) (seconds * 1e9);
        for (Double capacity : new Double[] {smallest, null}) {
            try (ForwardPass pass = device.open(modelFor(capacity), settings.batch(), seqLen)) {
                do {
                    pass.run(tokens);
                } while (System.nanoTime() < (capacity == null ? end : end - (long) (seconds * 0.5e9)));
            } catch (RuntimeException | LinkageError | OutOfMemoryError e) {
                return;
            }
        }
    }

    /** The model a row measures: the dense counterpart, or the model routed at the capacity. */
    private Model modelFor(Double capacity) {
        ModelConfig c = model.config();
        return capacity == null ? model.asDense() : model.withConfig(c.withRouting(capacity, c.routedLayers()));
    }

    private StudyRow measure(StudyDevice device, int seqLen, Double capacity, StudyRow dense) {
        Model m = modelFor(capacity);
        ModelConfig c = m.config();
        int batch = settings.batch();
        double flops = batch * ModelCost.forwardFlops(c, seqLen);
        double denseFlops = batch * ModelCost.forwardFlops(c.dense(), seqLen);
        double kvBytes = ModelCost.kvCacheBytesPerToken(c) * seqLen * batch;
        int[][] tokens = tokens(c.vocabSize(), batch, seqLen);
        resetPeakHeap();
        try (ForwardPass pass = device.open(m, batch, seqLen)) {
            long warmupEnd = System.nanoTime() + (long) (settings.warmupSeconds() * 1e9);
            do {
                pass.run(tokens);
            } while (System.nanoTime() < warmupEnd);
            double[] ms = new double[settings.repeats()];
            for (int i = 0; i < ms.length; i++) {
                long start = System.nanoTime();
                pass.run(tokens);
                ms[i] = (System.nanoTime() - start) / 1e6;
            }
            Arrays.sort(ms);
            double median = ms.length % 2 == 1 ? ms[ms.length / 2] : (ms[ms.length / 2 - 1] + ms[ms.length / 2]) / 2;
            Double speedup = dense == null || dense.failed() ? null : dense.medianMs() / median;
            double ideal = denseFlops / flops;
            return new StudyRow(device.id(), capacity, seqLen, batch, flops, ideal, median, ms[0], ms[ms.length - 1],
                    speedup, speedup == null ? null : speedup / ideal, batch * seqLen / (median / 1e3), kvBytes,
                    pass.hostDeviceBytes(), peakHeap(), routingChecksum(pass), null);
        } catch (RuntimeException | LinkageError | OutOfMemoryError e) {
            // A device that fails (compile error, lost device, out of memory) is reported in its row;
            // the pass is closed by now, so what it held is released and the study can go on.
            String message = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
            return new StudyRow(device.id(), capacity, seqLen, batch, flops, denseFlops / flops, null, null, null, null,
                    null, null, kvBytes, null, null, null, message.lines().findFirst().orElse(message));
        }
    }

    /** Random tokens, the same for every device, capacity and run of a study with this seed. */
    private int[][] tokens(int vocab, int batch, int seqLen) {
        SplittableRandom random = new SplittableRandom(settings.seed() * 31 + seqLen);
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
