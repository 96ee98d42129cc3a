package dev.mod.bench;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The report's arithmetic on a hand-made JMH result, where the medians are known. */
class BenchReportTest {
    @TempDir
    Path dir;

    // one fork of the training benchmark: per iteration the summed forward and step milliseconds and the rounds
    private static String trainResult(String model, double[] forwardMs, double[] stepMs, double[] rounds) {
        return """
                {"benchmark": "dev.mod.bench.TrainBenchmark.forwardThenStep", "params": {"model": "%s"},
                 "primaryMetric": {"score": 1, "scoreUnit": "ms/op", "rawData": [[1, 1, 1]]},
                 "secondaryMetrics": {
                   "forwardMs": {"score": 0, "rawData": [%s]},
                   "stepMs": {"score": 0, "rawData": [%s]},
                   "rounds": {"score": 0, "rawData": [%s]},
                   "gc.alloc.rate.norm": {"score": 1234, "rawData": [[1234, 1234, 1234]]}}}
                """.formatted(model, array(forwardMs), array(stepMs), array(rounds));
    }

    // What BenchReport prints for a JMH result file.
    private static String report(Path json) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        PrintStream saved = System.out;
        System.setOut(new PrintStream(bytes, true, StandardCharsets.UTF_8));
        try {
            BenchReport.main(new String[] {json.toString()});
        } finally {
            System.setOut(saved);
        }
        return bytes.toString(StandardCharsets.UTF_8);
    }

    private static String array(double[] values) {
        StringBuilder s = new StringBuilder("[");
        for (int i = 0; i < values.length; i++) {
            s.append(i == 0 ? "" : ", ").append(values[i]);
        }
        return s.append("]").toString();
    }

    @Test
    void trainingTableGivesMediansOfEachIterationsMeansAndRatio() throws IOException {
        // iterations (rounds, forward ms, step ms per round): (4, 100, 300), (5, 110, 320), (2, 90, 360);
        // means per round: forward 100, 110, 90 -> median 100; step 300, 320, 360 -> median 320;
        // ratios 3.00, 2.91, 4.00 -> median 3.00 (not 320 / 100 = 3.20: the ratio is taken per iteration)
        Path json = dir.resolve("train.json");
        Files.writeString(json, "[" + trainResult("mod", new double[] {400, 550, 180}, new double[] {1200, 1600, 720},
                new double[] {4, 5, 2}) + "]");
        String table = report(json);
        assertTrue(table.contains("| MoD | 320 | 6400 | 100 | 3.00 | 1234 |"), table);
    }

    private static String result(String benchmark, String params, double ms) {
        return """
                {"benchmark": "dev.mod.bench.%s", "params": {%s},
                 "primaryMetric": {"score": %s, "scoreUnit": "ms/op", "rawData": [[%s, %s]]}, "secondaryMetrics": {}}
                """.formatted(benchmark, params, ms, ms, ms);
    }

    @Test
    void peakTableAndTheGemmsShareOfTheFmaCeiling() throws IOException {
        // Two threads: FMA chains at 400 GFLOP/s, reads at 40 GB/s, the GEMM at 200 GFLOP/s: half the ceiling.
        double fmaMs = 2.0 * PeakBenchmark.FMA_FLOPS / 400e9 * 1e3;
        double readMs = 2.0 * PeakBenchmark.READ_BYTES / 40e9 * 1e3;
        Path json = dir.resolve("peak.json");
        Files.writeString(json, "[" + String.join(",",
                result("PeakBenchmark.fma", "\"threads\": \"2\"", fmaMs),
                result("PeakBenchmark.read", "\"threads\": \"2\"", readMs),
                result("GemmBenchmark.mod", "\"shape\": \"1024x1024x4096\", \"threads\": \"2\"", 2.0 * 1024 * 1024 * 4096 / 200e9 * 1e3))
                + "]");
        String table = report(json);
        assertTrue(table.contains("| 2 | 400.0 | 40.0 |"), table);
        assertTrue(table.contains("| 1024x1024x4096 | 2 | 200.0 | 50% |"), table);
    }

    @Test
    void sixteenBitWeightsAreComparedWithF32() throws IOException {
        // model: F32 dense 100 ms, BF16 dense 104 ms -> 1.040 of F32's time; results without a dtype are F32's
        Path model = dir.resolve("model.json");
        Files.writeString(model, "[" + String.join(",",
                result("ModelBenchmark.forward", "\"seqLen\": \"1024\", \"model\": \"dense\"", 100),
                result("ModelBenchmark.forward", "\"seqLen\": \"1024\", \"model\": \"mod\"", 60),
                result("ModelBenchmark.forward", "\"seqLen\": \"1024\", \"model\": \"dense\", \"dtype\": \"bf16\"", 104),
                result("ModelBenchmark.forward", "\"seqLen\": \"1024\", \"model\": \"mod\", \"dtype\": \"bf16\"", 62)) + "]");
        String table = report(model);
        assertTrue(table.contains("| 1024 | F32 | 100.0 | 60.0 | 0.600 |") && table.contains("| 1.000 |"), table);
        assertTrue(table.contains("| 1024 | BF16 | 104.0 | 62.0 | 0.596 |") && table.contains("| 1.040 |"), table);
    }
}
