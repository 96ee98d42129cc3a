package dev.mod.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelCost;
import dev.mod.model.Presets;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Turns JMH JSON results of the project's benchmarks into Markdown tables: GFLOP/s of the GEMMs beside
 * native OpenBLAS, routed blocks against the dense block, the MoD model against the dense model, decode
 * steps of the MoD model against the dense model's.
 * Usage: BenchReport RESULT.json [MORE.json ...]
 */
public final class BenchReport {
    /**
     * score: JMH's mean over the measured iterations; median: their median (all forks together); secondary:
     * the scores of the secondary metrics (profilers, counters), secondaryIterations: their values per iteration.
     */
    private record Row(String benchmark, Map<String, String> params, double score, double median, String unit,
                       Map<String, Double> secondary, Map<String, List<Double>> secondaryIterations) {
        String param(String name) {
            String value = params.get(name);
            if (name.equals("cache") && (value == null || value.equals("model"))) {
                // the model's default cache (KvCache.typeFor): BF16 for 16-bit weights; results from before the cache
                // parameter had an F32 cache
                return value != null && !param("dtype").equals("f32") ? "bf16" : "f32";
            }
            // results from before the dtype parameter are of F32 weights
            return value == null && name.equals("dtype") ? "f32" : value;
        }
    }

    private BenchReport() {
    }

    public static void main(String[] args) throws IOException {
        List<Row> rows = new ArrayList<>();
        for (String file : args) {
            for (JsonNode result : new ObjectMapper().readTree(Path.of(file).toFile())) {
                Map<String, String> params = new LinkedHashMap<>();
                result.path("params").fields().forEachRemaining(e -> params.put(e.getKey(), e.getValue().asText()));
                Map<String, Double> secondary = new LinkedHashMap<>();
                Map<String, List<Double>> secondaryIterations = new LinkedHashMap<>();
                result.path("secondaryMetrics").fields().forEachRemaining(e -> {
                    secondary.put(e.getKey(), e.getValue().path("score").asDouble());
                    secondaryIterations.put(e.getKey(), iterations(e.getValue()));
                });
                String name = result.get("benchmark").asText();
                rows.add(new Row(name.substring(name.lastIndexOf('.', name.lastIndexOf('.') - 1) + 1), params,
                        result.path("primaryMetric").path("score").asDouble(), median(iterations(result.path("primaryMetric"))),
                        result.path("primaryMetric").path("scoreUnit").asText(), secondary, secondaryIterations));
            }
        }
        peak(rows);
        gemm(rows);
        attention(rows);
        block(rows);
        model(rows);
        decode(rows);
        train(rows);
    }

    // a metric's values per measured iteration, all forks in order
    private static List<Double> iterations(JsonNode metric) {
        List<Double> values = new ArrayList<>();
        metric.path("rawData").forEach(fork -> fork.forEach(v -> values.add(v.asDouble())));
        return values;
    }

    private static double median(List<Double> values) {
        if (values.isEmpty()) {
            return Double.NaN;
        }
        List<Double> sorted = values.stream().sorted().toList();
        int n = sorted.size();
        return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
    }

    private static Row find(List<Row> rows, String benchmark, String... params) {
        for (Row r : rows) {
            if (!r.benchmark().equals(benchmark)) {
                continue;
            }
            boolean match = true;
            for (int i = 0; i < params.length; i += 2) {
                match &= params[i + 1].equals(r.param(params[i]));
            }
            if (match) {
                return r;
            }
        }
        return null;
    }

    /** The FMA ceiling in GFLOP/s for a thread count (PeakBenchmark), or null when the results have none. */
    private static Double fmaPeak(List<Row> rows, String threads) {
        Row r = find(rows, "PeakBenchmark.fma", "threads", threads);
        return r == null ? null : Double.parseDouble(threads) * PeakBenchmark.FMA_FLOPS / (r.score() * 1e-3) / 1e9;
    }

    /** The streaming read bandwidth in GB/s for a thread count (PeakBenchmark), or null. */
    private static Double readPeak(List<Row> rows, String threads) {
        Row r = find(rows, "PeakBenchmark.read", "threads", threads);
        return r == null ? null : Double.parseDouble(threads) * PeakBenchmark.READ_BYTES / (r.score() * 1e-3) / 1e9;
    }

    private static String percent(double value, Double of) {
        return of == null ? "-" : String.format(Locale.ROOT, "%.0f%%", 100 * value / of);
    }

    private static void peak(List<Row> rows) {
        if (rows.stream().noneMatch(r -> r.benchmark().startsWith("PeakBenchmark"))) {
            return;
        }
        System.out.println("Physical limits: Vector API FMA chains and streaming reads (256 MB per thread)\n");
        System.out.println("| threads | FMA GFLOP/s | read GB/s |");
        System.out.println("|---|---|---|");
        for (String threads : List.of("1", "2")) {
            Double fma = fmaPeak(rows, threads);
            Double read = readPeak(rows, threads);
            if (fma != null || read != null) {
                System.out.printf(Locale.ROOT, "| %s | %s | %s |%n", threads, fma == null ? "-" : String.format(Locale.ROOT, "%.1f", fma),
                        read == null ? "-" : String.format(Locale.ROOT, "%.1f", read));
            }
        }
        System.out.println();
    }

    private static void gemm(List<Row> rows) {
        List<String> shapes = rows.stream().filter(r -> r.benchmark().startsWith("GemmBenchmark"))
                .map(r -> r.param("shape")).distinct().toList();
        if (shapes.isEmpty()) {
            return;
        }
        System.out.println("GEMM out[M,N] = x[M,K] . W[N,K]^T, GFLOP/s (2 M K N / time)\n");
        System.out.println("| M x K x N | threads | mod | of FMA peak | OpenBLAS (JNI) | VectorBLAS (1 thread) | mod / OpenBLAS | mod 2T / 1T |");
        System.out.println("|---|---|---|---|---|---|---|---|");
        for (String shape : shapes) {
            String[] d = shape.split("x");
            double flops = 2.0 * Double.parseDouble(d[0]) * Double.parseDouble(d[1]) * Double.parseDouble(d[2]);
            for (String threads : List.of("1", "2")) {
                Row mod = find(rows, "GemmBenchmark.mod", "shape", shape, "threads", threads);
                Row blas = find(rows, "GemmBenchmark.openblasJni", "shape", shape, "threads", threads);
                Row vec = find(rows, "GemmBenchmark.vectorBlas", "shape", shape, "threads", "1");
                Row mod1 = find(rows, "GemmBenchmark.mod", "shape", shape, "threads", "1");
                if (mod == null) {
                    continue;
                }
                System.out.printf(Locale.ROOT, "| %s | %s | %.1f | %s | %s | %s | %s | %s |%n", shape, threads, gflops(flops, mod),
                        percent(gflops(flops, mod), fmaPeak(rows, threads)),
                        blas == null ? "-" : String.format(Locale.ROOT, "%.1f", gflops(flops, blas)),
                        vec == null || !threads.equals("1") ? "-" : String.format(Locale.ROOT, "%.1f", gflops(flops, vec)),
                        blas == null ? "-" : String.format(Locale.ROOT, "%.2f", blas.score() / mod.score()),
                        threads.equals("2") && mod1 != null ? String.format(Locale.ROOT, "%.2f", mod1.score() / mod.score()) : "");
            }
        }
        System.out.println();
    }

    private static void attention(List<Row> rows) {
        List<String> lengths = rows.stream().filter(r -> r.benchmark().startsWith("AttentionBenchmark"))
                .map(r -> r.param("seqLen")).distinct().toList();
        if (lengths.isEmpty()) {
            return;
        }
        System.out.println("Causal attention, 8 heads of 64, one sequence, cpu backend: GFLOP/s (4 dh per visible query-key pair / time)\n");
        System.out.println("| T | threads | ms | GFLOP/s | of FMA peak |");
        System.out.println("|---|---|---|---|---|");
        for (String t : lengths) {
            for (String threads : List.of("1", "2")) {
                Row r = find(rows, "AttentionBenchmark.causal", "seqLen", t, "threads", threads);
                if (r != null) {
                    double g = gflops(AttentionBenchmark.flops(Integer.parseInt(t)), r);
                    System.out.printf(Locale.ROOT, "| %s | %s | %.2f | %.1f | %s |%n", t, threads, r.score(), g,
                            percent(g, fmaPeak(rows, threads)));
                }
            }
        }
        System.out.println();
    }

    private static double gflops(double flops, Row r) {
        return flops / (r.score() * 1e-3) / 1e9; // scores are ms/op
    }

    private static void block(List<Row> rows) {
        List<String> lengths = rows.stream().filter(r -> r.benchmark().startsWith("BlockBenchmark"))
                .map(r -> r.param("seqLen")).distinct().toList();
        if (lengths.isEmpty()) {
            return;
        }
        System.out.println("One block (d = 512, 8 heads, hidden 1376), one sequence, cpu backend, all cores: ms per block\n");
        System.out.println("| T | block | ms | / dense | FLOPs / dense | routing ms | routing share |");
        System.out.println("|---|---|---|---|---|---|---|");
        for (String t : lengths) {
            Row dense = find(rows, "BlockBenchmark.block", "seqLen", t, "capacity", "dense");
            for (String c : List.of("dense", "0.125", "0.25", "0.5", "1.0")) {
                Row block = find(rows, "BlockBenchmark.block", "seqLen", t, "capacity", c);
                Row routing = find(rows, "BlockBenchmark.routing", "seqLen", t, "capacity", c);
                if (block == null) {
                    continue;
                }
                System.out.printf(Locale.ROOT, "| %s | %s | %.2f | %s | %.3f | %s | %s |%n", t,
                        c.equals("dense") ? "dense" : "routed " + c, block.score(),
                        dense == null ? "-" : String.format(Locale.ROOT, "%.3f", block.score() / dense.score()),
                        blockFlops(Integer.parseInt(t), c) / blockFlops(Integer.parseInt(t), "dense"),
                        routing == null || c.equals("dense") ? "-" : String.format(Locale.ROOT, "%.3f", routing.score()),
                        routing == null || c.equals("dense") ? "-" : String.format(Locale.ROOT, "%.1f%%", 100 * routing.score() / block.score()));
            }
        }
        System.out.println();
    }

    private static double blockFlops(int seqLen, String capacity) {
        var one = Presets.get("bench").oneBlock(capacity.equals("dense") ? null : Double.valueOf(capacity));
        return ModelCost.layerFlops(one, 0, seqLen);
    }

    private static void model(List<Row> rows) {
        List<String> lengths = rows.stream().filter(r -> r.benchmark().startsWith("ModelBenchmark"))
                .map(r -> r.param("seqLen")).distinct().toList();
        if (lengths.isEmpty()) {
            return;
        }
        var config = Presets.get("bench");
        System.out.println("Full forward, bench model (8 layers, d = 512; MoD: every other block at 12.5%), one sequence, cpu backend, all cores\n");
        System.out.println("| T | weights | dense ms | MoD ms | time MoD / dense | FLOPs MoD / dense | dense time / F32's | allocated per pass (B, MoD) |");
        System.out.println("|---|---|---|---|---|---|---|---|");
        for (String t : lengths) {
            Row f32 = find(rows, "ModelBenchmark.forward", "seqLen", t, "model", "dense", "dtype", "f32");
            for (String dtype : dtypes(rows, "ModelBenchmark")) {
                Row dense = find(rows, "ModelBenchmark.forward", "seqLen", t, "model", "dense", "dtype", dtype);
                Row mod = find(rows, "ModelBenchmark.forward", "seqLen", t, "model", "mod", "dtype", dtype);
                if (dense == null || mod == null) {
                    continue;
                }
                int seqLen = Integer.parseInt(t);
                Double alloc = mod.secondary().get("gc.alloc.rate.norm");
                System.out.printf(Locale.ROOT, "| %s | %s | %.1f | %.1f | %.3f | %.3f | %s | %s |%n", t, dtype.toUpperCase(Locale.ROOT),
                        dense.score(), mod.score(), mod.score() / dense.score(),
                        ModelCost.forwardFlops(config, seqLen) / ModelCost.forwardFlops(config.dense(), seqLen),
                        f32 == null ? "-" : String.format(Locale.ROOT, "%.3f", dense.score() / f32.score()),
                        alloc == null ? "(run with -prof gc)" : String.format(Locale.ROOT, "%.0f", alloc));
            }
        }
        System.out.println();
    }

    /** The weight types a benchmark ran with, F32 first. */
    private static List<String> dtypes(List<Row> rows, String benchmark) {
        return rows.stream().filter(r -> r.benchmark().startsWith(benchmark)).map(r -> r.param("dtype")).distinct()
                .sorted(java.util.Comparator.comparing((String d) -> !d.equals("f32")).thenComparing(d -> d)).toList();
    }

    private static void decode(List<Row> rows) {
        List<String> contexts = rows.stream().filter(r -> r.benchmark().startsWith("DecodeBenchmark"))
                .map(r -> r.param("context")).distinct().toList();
        if (contexts.isEmpty()) {
            return;
        }
        System.out.println("Decode steps, bench model (8 layers, d = 512; MoD: every other block routed, calibrated rule), "
                + "one sequence, cpu backend, all cores\n");
        System.out.println("| context | weights | KV cache | dense ms/token | MoD ms/token | dense tokens/s | MoD tokens/s | MoD speedup "
                + "| routed fraction | KV cache MoD / dense | dense tokens/s / F32's | dense GB/s read | of read peak |");
        System.out.println("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        Double readPeak = readPeak(rows, String.valueOf(Runtime.getRuntime().availableProcessors()));
        for (String t : contexts) {
            Row f32 = find(rows, "DecodeBenchmark.step", "context", t, "model", "dense", "dtype", "f32", "cache", "f32");
            for (String dtype : dtypes(rows, "DecodeBenchmark")) {
                for (String cache : List.of("f32", "bf16")) {
                    Row dense = find(rows, "DecodeBenchmark.step", "context", t, "model", "dense", "dtype", dtype, "cache", cache);
                    Row mod = find(rows, "DecodeBenchmark.step", "context", t, "model", "mod", "dtype", dtype, "cache", cache);
                    if (dense == null || mod == null) {
                        continue;
                    }
                    Map<String, Double> c = mod.secondary();
                    double gbPerSecond = denseStepBytes(Integer.parseInt(t), dtype.equals("f32") ? Float.BYTES : 2,
                            cache.equals("f32") ? Float.BYTES : 2) / (dense.score() * 1e-3) / 1e9;
                    System.out.printf(Locale.ROOT, "| %s | %s | %s | %.2f | %.2f | %.1f | %.1f | %.2fx | %.3f | %.3f | %s | %.1f | %s |%n", t,
                            dtype.toUpperCase(Locale.ROOT), cache.toUpperCase(Locale.ROOT), dense.score(), mod.score(),
                            1e3 / dense.score(), 1e3 / mod.score(), dense.score() / mod.score(),
                            c.get("routedTokens") / c.get("routingDecisions"), c.get("kvBytes") / c.get("denseKvBytes"),
                            f32 == null ? "-" : String.format(Locale.ROOT, "%.2fx", f32.score() / dense.score()), gbPerSecond,
                            percent(gbPerSecond, readPeak));
                }
            }
        }
        System.out.println();
    }

    /**
     * Bytes a dense decode step of the bench model reads at least: every matrix once at `weightBytes` per entry (one
     * embedding row; norms are too small to count) and the KV cache at `cacheBytes` per value.
     */
    private static double denseStepBytes(int context, int weightBytes, int cacheBytes) {
        ModelConfig c = Presets.get("bench").dense();
        long weights = c.tensorShapes().entrySet().stream().filter(e -> !e.getKey().equals("tok_embeddings.weight"))
                .mapToLong(e -> java.util.Arrays.stream(e.getValue()).reduce(1, (a, b) -> a * b)).sum();
        return (double) weightBytes * weights + (double) cacheBytes * context * c.nLayers() * 2L * c.kvDim();
    }

    private static void train(List<Row> rows) {
        if (rows.stream().noneMatch(r -> r.benchmark().startsWith("TrainBenchmark"))) {
            return;
        }
        System.out.println("Training step (forward, backward, clipping, AdamW) and inference forward pass of the same batch, "
                + "timed in the same rounds; bench model, 4 x 512 tokens, cpu backend, all cores; medians over the "
                + "measured iterations of each iteration's mean\n");
        System.out.println("| model | step ms | training tokens/s | inference forward ms | step / forward | allocated per round (B) |");
        System.out.println("|---|---|---|---|---|---|");
        for (String m : List.of("dense", "mod")) {
            Row r = find(rows, "TrainBenchmark.forwardThenStep", "model", m);
            if (r == null) {
                continue;
            }
            List<Double> forward = r.secondaryIterations().get("forwardMs");
            List<Double> step = r.secondaryIterations().get("stepMs");
            List<Double> rounds = r.secondaryIterations().get("rounds");
            List<Double> stepMs = new ArrayList<>();
            List<Double> forwardMs = new ArrayList<>();
            List<Double> ratio = new ArrayList<>();
            for (int i = 0; i < rounds.size(); i++) {
                stepMs.add(step.get(i) / rounds.get(i));
                forwardMs.add(forward.get(i) / rounds.get(i));
                ratio.add(step.get(i) / forward.get(i));
            }
            Double alloc = r.secondary().get("gc.alloc.rate.norm");
            System.out.printf(Locale.ROOT, "| %s | %.0f | %.0f | %.0f | %.2f | %s |%n", m.equals("mod") ? "MoD" : m, median(stepMs),
                    4 * 512 / (median(stepMs) / 1e3), median(forwardMs), median(ratio),
                    alloc == null ? "(run with -prof gc)" : String.format(Locale.ROOT, "%.0f", alloc));
        }
        System.out.println();
    }
}
