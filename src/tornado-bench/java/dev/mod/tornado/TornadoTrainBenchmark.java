package dev.mod.tornado;

import dev.mod.backend.Backends;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelCost;
import dev.mod.model.ModelInit;
import dev.mod.model.Presets;
import dev.mod.plan.RoutingRule;
import dev.mod.train.AdamW;
import dev.mod.train.Parameters;
import dev.mod.train.TrainSettings;
import dev.mod.train.TrainState;
import dev.mod.train.TrainingPass;
import dev.mod.train.TrainingPlan;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Training steps on the TornadoVM device beside the cpu backend's, in the same run: a MoD model (a preset, every
 * other block routed) and its dense counterpart, B sequences of T random tokens per step (forward, backward,
 * clipping, AdamW). Per step: the median wall time over the timed steps (after one step that compiles the graphs),
 * and on the device each section's kernel time and GFLOP/s (the products' FLOPs, ModelCost: a section's backward
 * counts twice its forward) and the bytes moved in and out.
 * Usage (under TornadoVM, see scripts/bench-tornado): TornadoTrainBenchmark [preset (small)] [B (4)] [T (256)] [steps (5)]
 */
public final class TornadoTrainBenchmark {
    private TornadoTrainBenchmark() {
    }

    private record Run(String model, double[] ms, Map<String, double[]> sectionMs, Map<String, Double> sectionFlops, long bytesIn,
                       long bytesOut, long deviceBytes) {
    }

    public static void main(String[] args) {
        String preset = args.length > 0 ? args[0] : "small";
        int batch = args.length > 1 ? Integer.parseInt(args[1]) : 4;
        int seqLen = args.length > 2 ? Integer.parseInt(args[2]) : 256;
        int steps = args.length > 3 ? Integer.parseInt(args[3]) : 5;
        ModelConfig mod = Presets.get(preset);
        System.out.printf(Locale.ROOT, "Training steps of the %s preset (%s), %d x %d tokens; medians of %d steps after one that compiles%n%n",
                preset, "dim " + mod.dim() + ", " + mod.nLayers() + " layers", batch, seqLen, steps);
        List<Run> tornado = new ArrayList<>();
        List<Run> cpu = new ArrayList<>();
        // The cpu backend runs after the device's passes are closed (see TornadoStageBenchmark).
        for (String model : List.of("dense", "mod")) {
            TrainSettings s = settings(model.equals("dense") ? mod.dense() : mod, batch, seqLen, steps);
            TornadoTrainingKernels[] kernels = new TornadoTrainingKernels[1];
            TrainingPass.Opener profiled = TrainingPlan.opener((x, y) -> kernels[0] = new TornadoTrainingKernels(null, batch * seqLen, true));
            try (TrainingPass pass = profiled.open(s, fresh(s))) {
                tornado.add(measure(pass, s, model, steps, kernels[0]));
            }
        }
        for (String model : List.of("dense", "mod")) {
            TrainSettings s = settings(model.equals("dense") ? mod.dense() : mod, batch, seqLen, steps);
            try (TrainingPass pass = Backends.cpu(Runtime.getRuntime().availableProcessors()).training().open(s, fresh(s))) {
                cpu.add(measure(pass, s, model, steps, null));
            }
        }
        double tokens = batch * seqLen;
        System.out.println("| model | tornado ms/step | tokens/s | cpu ms/step | tokens/s | tornado / cpu | MoD / dense step (tornado, cpu) |");
        System.out.println("|---|---|---|---|---|---|---|");
        for (int i = 0; i < 2; i++) {
            double t = median(tornado.get(i).ms());
            double c = median(cpu.get(i).ms());
            System.out.printf(Locale.ROOT, "| %s | %.1f | %.0f | %.1f | %.0f | %.2f | %s |%n", tornado.get(i).model(), t, tokens / t * 1e3, c,
                    tokens / c * 1e3, t / c, i == 0 ? "-" : String.format(Locale.ROOT, "%.2f, %.2f", t / median(tornado.get(0).ms()),
                            c / median(cpu.get(0).ms())));
        }
        for (Run r : tornado) {
            System.out.printf(Locale.ROOT, "%nDevice sections of %s (the run holds %.1f MiB on the device): kernel ms per step (median), "
                    + "GFLOP/s of the products; bytes moved per step: %d in (the step's inputs and the launches' arguments), %d out "
                    + "(losses, gradient norm)%n", r.model(), r.deviceBytes() / 1048576.0, r.bytesIn(), r.bytesOut());
            System.out.println("| section | kernel ms | GFLOP/s |");
            System.out.println("|---|---|---|");
            r.sectionMs().forEach((section, ms) -> {
                Double flops = r.sectionFlops().get(section);
                System.out.printf(Locale.ROOT, "| %s | %.2f | %s |%n", section, median(ms),
                        flops == null ? "-" : String.format(Locale.ROOT, "%.2f", flops / median(ms) / 1e6));
            });
        }
    }

    private static TrainSettings settings(ModelConfig c, int batch, int seqLen, int steps) {
        return new TrainSettings("bench", c.toJsonTree(), 0, RoutingRule.TOP_K, 1, "random", 1 << 20, steps + 1, batch, seqLen, 1e-3, 1,
                0.1, 0.1, 1.0, 0.01, 1.0, 1000, 1, 1000);
    }

    private static TrainState fresh(TrainSettings s) {
        Parameters p = Parameters.of(ModelInit.random(s.config(), 1, 0));
        return new TrainState(p, new AdamW(p, s.weightDecay()));
    }

    // one step that compiles (not timed), then `steps` timed ones; on the device, each section's kernel time per step
    private static Run measure(TrainingPass pass, TrainSettings s, String model, int steps, TornadoTrainingKernels kernels) {
        ModelConfig c = s.config();
        SplittableRandom random = new SplittableRandom(5);
        double[] ms = new double[steps];
        Map<String, double[]> sectionMs = new LinkedHashMap<>();
        long bytesIn = 0;
        long bytesOut = 0;
        for (int step = -1; step < steps; step++) {
            int[][] input = new int[s.batch()][s.seqLen()];
            int[][] target = new int[s.batch()][s.seqLen()];
            for (int b = 0; b < s.batch(); b++) {
                for (int t = 0; t < s.seqLen(); t++) {
                    input[b][t] = random.nextInt(c.vocabSize());
                    target[b][t] = random.nextInt(c.vocabSize());
                }
            }
            long downloaded = kernels == null ? 0 : kernels.downloadedBytes();
            long begin = System.nanoTime();
            pass.forward(input, target, step);
            pass.backward();
            pass.clipGradients(s.clip());
            pass.update(1e-3);
            if (step < 0) {
                if (kernels != null) {
                    kernels.takeProfile();
                }
                continue;
            }
            ms[step] = (System.nanoTime() - begin) / 1e6;
            if (kernels != null) {
                bytesIn = 0;
                for (GraphProfile g : kernels.takeProfile()) {
                    sectionMs.computeIfAbsent(g.graph(), k -> new double[steps])[step] = g.kernelNanos() / 1e6;
                    bytesIn += g.bytesIn();
                    bytesOut = kernels.downloadedBytes() - downloaded;
                }
            }
        }
        Map<String, Double> flops = new LinkedHashMap<>();
        for (int layer = 0; layer < c.nLayers(); layer++) {
            double forward = s.batch() * ModelCost.layerFlops(c, layer, s.seqLen());
            flops.put("layer" + layer + ".forward", forward);
            flops.put("layer" + layer + ".backward", 2 * forward);
        }
        double head = 2.0 * s.batch() * s.seqLen() * c.dim() * c.vocabSize();
        flops.put("head", head);
        flops.put("head.backward", 2 * head);
        return new Run(model, ms, sectionMs, flops, bytesIn, bytesOut, kernels == null ? 0 : kernels.arenaBytes());
    }

    private static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        return sorted[sorted.length / 2];
    }
}
