package dev.mod.tornado;

import dev.mod.bench.DecodeBenchmark;
import dev.mod.backend.Backend;
import dev.mod.backend.Backends;
import dev.mod.model.DType;
import dev.mod.plan.CausalPass;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Decode steps of the bench model on the TornadoVM device, the MoD model (calibrated to route 12.5% in every other
 * block) against its dense counterpart, beside the cpu backend's same steps in the same run: the workload of the
 * cpu's DecodeBenchmark (JDK source text, the cache filled to context - steps, then the steps teacher-forced with
 * the text's next bytes, rolled back after each run). A step is what generation does per token: run the step and
 * bring its logits to the host. Medians of ms per step over the timed runs, after one warm-up run.
 * Usage (under TornadoVM, see scripts/bench-tornado): TornadoDecodeBenchmark [contexts (512,2048)] [steps (64)] [runs (3)]
 */
public final class TornadoDecodeBenchmark {
    private TornadoDecodeBenchmark() {
    }

    private record Row(int context, String model, double[] ms, double routed, long kvBytes, long denseKvBytes) {
    }

    public static void main(String[] args) {
        List<Integer> contexts = Arrays.stream((args.length > 0 ? args[0] : "512,2048").split(",")).map(Integer::valueOf).toList();
        int steps = args.length > 1 ? Integer.parseInt(args[1]) : 64;
        int runs = args.length > 2 ? Integer.parseInt(args[2]) : 3;
        System.out.printf("Decode steps of the bench model, one sequence, %d steps to the context; medians of %d runs%n%n", steps, runs);
        List<Row> tornado = new ArrayList<>();
        List<Row> cpu = new ArrayList<>();
        // The cpu backend runs after every TornadoVM plan is closed (see TornadoStageBenchmark); its kernels only
        // calibrate before that, which runs no TornadoVM code.
        try (Backend cpuBackend = Backends.start("cpu"); Backend tornadoBackend = Backends.start("tornado")) {
            List<DecodeBenchmark.Workload> workloads = new ArrayList<>();
            for (int context : contexts) {
                for (String model : List.of("dense", "mod")) {
                    DecodeBenchmark.Workload w = DecodeBenchmark.workload(model, DType.F32, context, steps, cpuBackend.hostKernels("calibration"));
                    workloads.add(w);
                    try (CausalPass plan = tornadoBackend.openCausal(w.model(), w.rule(), 1, w.prompt().length, context, null, DType.F32)) {
                        tornado.add(measure(plan, w, context, model, steps, runs));
                    }
                }
            }
            int i = 0;
            for (int context : contexts) {
                for (String model : List.of("dense", "mod")) {
                    DecodeBenchmark.Workload w = workloads.get(i++);
                    cpu.add(measure(cpuBackend.openCausal(w.model(), w.rule(), 1, w.prompt().length, context, null, DType.F32), w, context, model, steps, runs));
                }
            }
        }
        System.out.println("| context | model | tornado ms/token | tokens/s | MoD / dense tokens/s | cpu ms/token | tokens/s | MoD / dense | tornado / cpu | routed | KV / dense |");
        System.out.println("|---|---|---|---|---|---|---|---|---|---|---|");
        for (int i = 0; i < tornado.size(); i++) {
            Row t = tornado.get(i);
            Row c = cpu.get(i);
            Row tDense = tornado.get(i - i % 2);
            Row cDense = cpu.get(i - i % 2);
            System.out.printf(Locale.ROOT, "| %d | %s | %.2f | %.1f | %.2f | %.2f | %.1f | %.2f | %.1f | %s | %.3f |%n", t.context(), t.model(),
                    median(t.ms()), 1000 / median(t.ms()), median(tDense.ms()) / median(t.ms()), median(c.ms()), 1000 / median(c.ms()),
                    median(cDense.ms()) / median(c.ms()), median(t.ms()) / median(c.ms()),
                    t.model().equals("dense") ? "-" : String.format(Locale.ROOT, "%.3f", t.routed()), (double) t.kvBytes() / t.denseKvBytes());
        }
    }

    // Fills the cache with the prompt, then runs of `steps` decode steps (each bringing its logits over), rolled back after each.
    private static Row measure(CausalPass plan, DecodeBenchmark.Workload w, int context, String model, int steps, int runs) {
        plan.prefill(0, w.prompt());
        double[] ms = new double[runs];
        int[] seq = {0};
        int[] tok = new int[1];
        long kvBytes = 0;
        long routed = 0;
        long decisions = 0;
        for (int r = -1; r < runs; r++) {
            plan.resetCounts();
            long start = System.nanoTime();
            for (int i = 0; i < steps; i++) {
                tok[0] = w.next()[i];
                plan.run(seq, tok, 1);
                plan.logits();
            }
            long end = System.nanoTime();
            if (r >= 0) {
                ms[r] = (end - start) / 1e6 / steps;
                for (int layer : plan.routedLayers()) {
                    routed += plan.routedTokens(layer);
                    decisions += plan.decisions(layer);
                }
                kvBytes = plan.cacheBytes();
            }
            plan.truncate(0, w.prompt().length);
        }
        return new Row(context, model, ms, decisions == 0 ? 1 : (double) routed / decisions, kvBytes, plan.denseCacheBytes(context));
    }

    private static double median(double[] values) {
        double[] v = values.clone();
        Arrays.sort(v);
        return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
    }
}
