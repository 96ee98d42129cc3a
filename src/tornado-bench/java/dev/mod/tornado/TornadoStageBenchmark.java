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
 * One block of the benchmark model (d = 512, 8 heads, hidden 1376) on the TornadoVM device, dense and routed
 * at each capacity: the block's kernel time and launches beside the cpu backend's time for the same block in
 * the same run, then each task's kernel time with its GFLOP/s and GB/s (TornadoVM's profiler). Medians of the
 * timed runs after one warm-up run (which compiles the kernels and moves the weights).
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
        List<String> blockRows = new ArrayList<>();
        List<String> taskRows = new ArrayList<>();
        List<Double> tornadoMs = new ArrayList<>();
        List<Model> models = new ArrayList<>();
        for (String capacity : capacities) {
            ModelConfig one = bench.oneBlock(capacity.equals("dense") ? null : Double.valueOf(capacity));
            Model model = ModelInit.random(one, 1);
            int[][] tokens = benchTokens(one, seqLen);
            Map<String, double[]> taskMs = new LinkedHashMap<>();
            double[] kernelMs = new double[repeats];
            long bytesIn = 0;
            long bytesOut = 0;
            int launches = 0;
            try (TornadoForwardPlan plan = new TornadoForwardPlan(model, 1, seqLen, true)) {
                plan.keepRoutingOutputs(false);
                plan.run(tokens);
                for (int i = 0; i < repeats; i++) {
                    plan.run(tokens);
                    bytesIn = 0;
                    bytesOut = 0;
                    for (GraphProfile g : plan.lastProfile()) {
                        bytesIn += g.bytesIn();
                        bytesOut += g.bytesOut();
                        if (g.graph().equals("layer0")) {
                            kernelMs[i] = g.kernelNanos() / 1e6;
                            launches = g.tasks();
                            for (Map.Entry<String, Long> task : g.taskKernelNanos().entrySet()) {
                                taskMs.computeIfAbsent(task.getKey(), t -> new double[repeats])[i] = task.getValue() / 1e6;
                            }
                        }
                    }
                }
            }
            String block = capacity.equals("dense") ? "dense" : "routed " + capacity;
            int n = one.isRouted(0) ? one.capacityTokens(seqLen) : seqLen;
            for (Map.Entry<String, double[]> task : taskMs.entrySet()) {
                double ms = median(task.getValue());
                double[] work = taskWork(one, task.getKey(), n);
                taskRows.add(String.format(Locale.ROOT, "| %s | %s | %.3f | %s | %s |", block, task.getKey(), ms,
                        work[0] > 0 ? String.format(Locale.ROOT, "%.1f", work[0] / ms / 1e6) : "-",
                        work[1] > 0 ? String.format(Locale.ROOT, "%.1f", work[1] / ms / 1e6) : "-"));
            }
            tornadoMs.add(median(kernelMs));
            blockRows.add(String.format(Locale.ROOT, "| %s | %.3f | %d | %.2f | %d / %d |", block,
                    ModelCost.layerFlops(one, 0, seqLen) / ModelCost.layerFlops(one.dense(), 0, seqLen), launches, median(kernelMs),
                    bytesIn, bytesOut));
            models.add(model);
        }
        // The cpu backend runs after every TornadoVM plan is closed: on PoCL, compiling TornadoVM kernels
        // after the cpu backend's worker pool has run crashed the JVM (seen with TornadoVM 5.2.1).
        System.out.println("| block | FLOPs / dense | launches | tornado kernels ms | bytes in / out per run | cpu block ms | tornado / cpu |");
        System.out.println("|---|---|---|---|---|---|---|");
        for (int i = 0; i < blockRows.size(); i++) {
            double cpu = cpuBlockMillis(models.get(i), benchTokens(models.get(i).config(), seqLen), Math.max(repeats, 5));
            System.out.printf(Locale.ROOT, "%s %.2f | %.1f |%n", blockRows.get(i), cpu, tornadoMs.get(i) / cpu);
        }
        System.out.println();
        System.out.println("| block | task | kernel ms | GFLOP/s | GB/s (each operand once) |");
        System.out.println("|---|---|---|---|---|");
        taskRows.forEach(System.out::println);
    }

    /** FLOPs and the bytes a task must at least move (each operand read once, the result written once) for n rows. */
    private static double[] taskWork(ModelConfig c, String task, int n) {
        int d = c.dim();
        int qDim = c.nHeads() * c.headDim();
        int f = c.hiddenDim();
        return switch (task) {
            case "attention.qkv" -> product(n, d, qDim + 2 * c.kvDim());
            case "attention.out" -> product(n, qDim, d);
            case "mlp.w13" -> product(n, d, 2 * f);
            case "mlp.w2" -> product(n, f, d);
            case "attention" -> new double[] {4.0 * c.headDim() * c.nHeads() * n * (n + 1) / 2.0,
                    4.0 * n * (qDim + 2 * c.kvDim() + qDim)};
            case "attention.norm", "mlp.norm" -> new double[] {0, 4.0 * n * 2 * d};
            default -> new double[] {0, 0};
        };
    }

    private static double[] product(int rows, int in, int out) {
        return new double[] {2.0 * rows * in * out, 4.0 * ((double) rows * in + (double) out * in + (double) rows * out)};
    }

    private static int[][] benchTokens(ModelConfig config, int seqLen) {
        int[][] tokens = new int[1][seqLen];
        SplittableRandom random = new SplittableRandom(2);
        for (int t = 0; t < seqLen; t++) {
            tokens[0][t] = random.nextInt(config.vocabSize());
        }
        return tokens;
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
