package dev.mod.tornado;

import dev.mod.cpu.CpuKernels;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelCost;
import dev.mod.model.ModelInit;
import dev.mod.model.Presets;
import dev.mod.plan.ForwardPlan;
import dev.mod.plan.Stage;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Per-stage kernel and transfer times of one block of the benchmark model (d = 512, 8 heads, hidden 1376)
 * on the TornadoVM device, from TornadoVM's profiler, dense and routed at each capacity, beside the cpu
 * backend's time for the same block measured in the same run. Medians of the timed runs after one warm-up
 * run (which compiles the kernels and moves the weights).
 * Usage (under TornadoVM, see scripts/bench-tornado): TornadoStageBenchmark [T] [repeats] [capacities]
 */
public final class TornadoStageBenchmark {
    private TornadoStageBenchmark() {
    }

    public static void main(String[] args) {
        int seqLen = args.length > 0 ? Integer.parseInt(args[0]) : 256;
        int repeats = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        List<String> capacities = List.of((args.length > 2 ? args[2] : "dense,0.125,0.25,0.5,1.0").split(","));
        ModelConfig bench = Presets.get("bench");
        System.out.printf("One block of the bench model (d = %d, %d heads, hidden %d), B = 1, T = %d; medians of %d runs%n%n",
                bench.dim(), bench.nHeads(), bench.hiddenDim(), seqLen, repeats);
        System.out.println("| block | FLOPs / dense | tornado kernels ms | routing | attention | MLP | residual/scatter | transfers ms | bytes in / out per run | cpu block ms |");
        System.out.println("|---|---|---|---|---|---|---|---|---|---|");
        List<String> rows = new ArrayList<>();
        List<Model> models = new ArrayList<>();
        for (String capacity : capacities) {
            ModelConfig one = bench.oneBlock(capacity.equals("dense") ? null : Double.valueOf(capacity));
            Model model = ModelInit.random(one, 1);
            int[][] tokens = benchTokens(one, seqLen);
            Map<String, double[]> stageMs = new LinkedHashMap<>();
            double[] kernelMs = new double[repeats];
            double[] transferMs = new double[repeats];
            long bytesIn = 0;
            long bytesOut = 0;
            try (TornadoForwardPlan plan = new TornadoForwardPlan(model, 1, seqLen, true).withRoutingOutputs(false)) {
                plan.run(tokens);
                for (int i = 0; i < repeats; i++) {
                    plan.run(tokens);
                    bytesIn = 0;
                    bytesOut = 0;
                    for (TornadoForwardPlan.GraphProfile g : plan.lastProfile()) {
                        bytesIn += g.bytesIn();
                        bytesOut += g.bytesOut();
                        transferMs[i] += g.transferNanos() / 1e6;
                        if (!g.graph().equals("layer0")) {
                            continue;
                        }
                        kernelMs[i] = g.kernelNanos() / 1e6;
                        for (Map.Entry<String, Long> task : g.taskKernelNanos().entrySet()) {
                            stageMs.computeIfAbsent(stageOf(task.getKey()), s -> new double[repeats])[i] += task.getValue() / 1e6;
                        }
                    }
                }
            }
            rows.add(String.format(Locale.ROOT, "| %s | %.3f | %.1f | %s | %s | %s | %s | %.2f | %d / %d |",
                    capacity.equals("dense") ? "dense" : "routed " + capacity,
                    ModelCost.layerFlops(one, 0, seqLen) / ModelCost.layerFlops(one.dense(), 0, seqLen),
                    median(kernelMs), stage(stageMs, "routing"), stage(stageMs, "attention"), stage(stageMs, "mlp"),
                    stage(stageMs, "update"), median(transferMs), bytesIn, bytesOut));
            models.add(model);
        }
        // The cpu backend runs after every TornadoVM plan is closed: on PoCL, compiling TornadoVM kernels
        // after the cpu backend's worker pool has run crashed the JVM (seen with TornadoVM 5.2.1).
        for (int i = 0; i < rows.size(); i++) {
            int[][] tokens = benchTokens(models.get(i).config(), seqLen);
            System.out.printf(Locale.ROOT, "%s %.2f |%n", rows.get(i), cpuBlockMillis(models.get(i), tokens, repeats));
        }
    }

    private static int[][] benchTokens(ModelConfig config, int seqLen) {
        int[][] tokens = new int[1][seqLen];
        SplittableRandom random = new SplittableRandom(2);
        for (int t = 0; t < seqLen; t++) {
            tokens[0][t] = random.nextInt(config.vocabSize());
        }
        return tokens;
    }

    private static String stageOf(String task) {
        if (task.startsWith("attention.")) {
            return "attention";
        }
        if (task.startsWith("mlp.")) {
            return "mlp";
        }
        if (task.equals("scatter") || task.equals("residual")) {
            return "update";
        }
        return "routing";
    }

    private static String stage(Map<String, double[]> stageMs, String stage) {
        double[] ms = stageMs.get(stage);
        return ms == null ? "-" : String.format(Locale.ROOT, "%.1f", median(ms));
    }

    /** The same block's stages on the cpu backend, all cores: median of the timed runs after warm-up. */
    private static double cpuBlockMillis(Model model, int[][] tokens, int repeats) {
        try (CpuKernels kernels = new CpuKernels()) {
            ForwardPlan plan = new ForwardPlan(model, kernels, 1, tokens[0].length);
            Stage[] block = plan.stages().stream().filter(s -> s.name().startsWith("layer0.")).toArray(Stage[]::new);
            plan.stages().get(0).run(kernels);
            float[] input = plan.hidden().clone();
            List<Double> times = new ArrayList<>();
            long warmupEnd = System.nanoTime() + 2_000_000_000L;
            for (int i = 0; times.size() < repeats; i++) {
                System.arraycopy(input, 0, plan.hidden(), 0, input.length);
                long start = System.nanoTime();
                for (Stage s : block) {
                    s.run(kernels);
                }
                if (System.nanoTime() > warmupEnd) {
                    times.add((System.nanoTime() - start) / 1e6);
                }
            }
            return median(times.stream().mapToDouble(Double::doubleValue).toArray());
        }
    }

    private static double median(double[] values) {
        double[] v = values.clone();
        Arrays.sort(v);
        return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    }
}
