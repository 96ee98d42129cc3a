package dev.mod.cli;

import dev.mod.ModException;
import dev.mod.backend.Backend;
import dev.mod.data.ByteTokenizer;
import dev.mod.data.JdkSourceText;
import dev.mod.io.AtomicFiles;
import dev.mod.io.FolderLock;
import dev.mod.io.ModelFile;
import dev.mod.model.Model;
import dev.mod.model.RoutingCalibration;
import dev.mod.plan.CausalPlan;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "calibrate", mixinStandardHelpOptions = true,
        description = {"Set the thresholds of the calibrated causal routing rule from a text and write the model "
                + "with them (metadata \"calibration\").",
                "The text is cut into sequences of BOS and T - 1 bytes; each routed layer's threshold makes it route "
                        + "the model's capacity of those tokens."})
final class CalibrateCommand implements Callable<Integer> {
    @Mixin
    ModelFileOption model;

    @Option(names = "--text", required = true, paramLabel = "FILE|" + JdkSourceText.NAME,
            description = "The calibration text: a file, or " + JdkSourceText.NAME + " for the JDK's own Java sources.")
    String text;

    @Option(names = "--seq", paramLabel = "T", description = "Tokens per calibration sequence (default: the model's max_seq_len).")
    Integer seqLen;

    @Option(names = "--sequences", defaultValue = "2", paramLabel = "N",
            description = "Sequences to take from the text at most (default: ${DEFAULT-VALUE}).")
    int maxSequences;

    @Option(names = "--out", required = true, paramLabel = "MODEL", description = "The calibrated model file to write.")
    Path out;

    @Mixin
    BackendOption backend;

    @Override
    public Integer call() {
        if (maxSequences < 1) {
            throw new ModException("--sequences must be at least 1, got " + maxSequences);
        }
        AtomicFiles.refuseInputs(out, this.model.path, text.equals(JdkSourceText.NAME) ? null : Path.of(text));
        // one writer per folder: the calibrated model is written where no training run or study is writing
        Path folder = out.toAbsolutePath().getParent();
        try (FolderLock lock = FolderLock.acquire(folder, "calibration"); Model model = ModelFile.load(this.model.path);
             Backend runtime = backend.start()) {
            ByteTokenizer.check(model);
            if (model.config().routedLayers().isEmpty() && !model.config().hasExperts()) {
                throw new ModException("the model has no routed layers or experts to calibrate");
            }
            int t = seqLen == null ? model.config().maxSeqLen() : seqLen;
            if (t < 2 || t > model.config().maxSeqLen()) {
                throw new ModException("--seq must be in [2, " + model.config().maxSeqLen() + "] (the model's max_seq_len), got " + t);
            }
            int[][] sequences = sequences(readText(Math.multiplyExact(maxSequences, t - 1)), t);
            RoutingCalibration calibration = CausalPlan.calibrate(model, runtime.hostKernels("calibration"), sequences);
            ModelFile.save(model.withCalibration(calibration), out);
            StringBuilder layers = new StringBuilder();
            for (Map.Entry<Integer, Double> e : calibration.thresholds().entrySet()) {
                layers.append(String.format(" %d: %.4f", e.getKey(), e.getValue()));
            }
            System.out.printf("wrote %s: thresholds per routed layer%s, set on %d sequences of %d tokens to route %s of them%n",
                    out, layers, sequences.length, t, model.config().capacity());
            if (model.config().hasExperts()) {
                System.out.printf("  and thresholds on each layer's %d experts' probabilities, to give each %s of the rows its "
                        + "feed-forward saw%n", model.config().experts().count(), model.config().experts().capacity());
            }
        }
        return 0;
    }

    private byte[] readText(int maxBytes) {
        if (text.equals(JdkSourceText.NAME)) {
            return JdkSourceText.read(maxBytes);
        }
        try {
            byte[] all = Files.readAllBytes(Path.of(text));
            return all.length > maxBytes ? java.util.Arrays.copyOf(all, maxBytes) : all;
        } catch (IOException e) {
            throw new ModException("cannot read calibration text " + text + ": " + e.getMessage(), e);
        }
    }

    /** As many sequences of BOS and t - 1 bytes as the text holds. */
    private int[][] sequences(byte[] bytes, int t) {
        int n = bytes.length / (t - 1);
        if (n == 0) {
            throw new ModException("calibration text has " + bytes.length + " bytes, shorter than one sequence of " + t
                    + " tokens (BOS and " + (t - 1) + " bytes)");
        }
        return ByteTokenizer.promptWindows(bytes, 0, n, t);
    }
}
