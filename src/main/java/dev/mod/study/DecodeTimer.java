package dev.mod.study;

import dev.mod.model.Model;
import dev.mod.plan.CausalPass;
import dev.mod.plan.CausalPlan;
import dev.mod.plan.RoutingRule;

import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The decode columns of a study's rows: decode steps of each row's model on a device, timed beside the other rows. */
final class DecodeTimer {
    private final StudySettings settings;
    private final Model model;

    DecodeTimer(StudySettings settings, Model model) {
        this.settings = settings;
        this.model = model;
    }

    /** Decode timings of one row: ms per step of each timed run, the routed fraction, cache sizes; or why there are none. */
    record Measurement(double[] ms, Double routedFraction, long kvBytes, long denseKvBytes, String error) {
        static Measurement failed(String error) {
            return new Measurement(null, null, 0, 0, error);
        }
    }

    /**
     * Times decode steps of one device and sequence length for every row: each row's causal plan holds the
     * study's tokens up to T - s in every sequence (s = decode steps, at most T - 1); a timed run takes the
     * s steps to context T, one token per sequence each, then rolls the caches back. MoD rows route with
     * the calibrated rule, its thresholds set on other tokens of the same seed to route the row's capacity (and, in a
     * model with experts, each expert's capacity).
     * Runs go round-robin over the rows, as for prefill. Empty when the study measures no decode steps.
     */
    Map<Double, Measurement> measureGroup(StudyDevice device, int seqLen, List<Double> capacities) {
        Map<Double, Measurement> result = new HashMap<>();
        if (settings.decodeSteps() == 0) {
            return result;
        }
        int steps = Math.min(settings.decodeSteps(), seqLen - 1);
        if (steps < 1) {
            capacities.forEach(c -> result.put(c, Measurement.failed("T = 1 leaves no room for a decode step")));
            return result;
        }
        int batch = settings.batch();
        int context = seqLen - steps;
        int[][] tokens = StudyRunner.tokens(settings.seed(), model.config().vocabSize(), batch, seqLen, 0);
        int[] seq = new int[batch];
        int[] tok = new int[batch];
        Map<Double, CausalPass> plans = new LinkedHashMap<>();
        for (Double capacity : capacities) {
            try {
                CausalPass plan = decodePlan(device, capacity, seqLen, tokens, context);
                plans.put(capacity, plan);
                long warmupEnd = System.nanoTime() + (long) (settings.warmupSeconds() * 1e9);
                do {
                    decodeRun(plan, tokens, context, steps, seq, tok);
                } while (System.nanoTime() < warmupEnd);
            } catch (RuntimeException | OutOfMemoryError e) {
                CausalPass failed = plans.remove(capacity);
                if (failed != null) {
                    failed.close();
                }
                result.put(capacity, Measurement.failed(StudyRunner.oneLine(e)));
            }
        }
        try {
            measureDecode(plans, result, batch, seqLen, context, steps, tokens, seq, tok);
        } finally {
            plans.values().forEach(CausalPass::close);
        }
        return result;
    }

    /** The decode rows' timed runs, round-robin over the plans; each row's median ms per step, routed fraction and KV cache. */
    private void measureDecode(Map<Double, CausalPass> plans, Map<Double, Measurement> result, int batch, int seqLen,
                               int context, int steps, int[][] tokens, int[] seq, int[] tok) {
        Map<Double, double[]> ms = new HashMap<>();
        Map<Double, long[]> routing = new HashMap<>();
        Map<Double, Long> kvBytes = new HashMap<>();
        plans.keySet().forEach(c -> {
            ms.put(c, new double[settings.repeats()]);
            routing.put(c, new long[2]);
        });
        for (int i = 0; i < settings.repeats(); i++) {
            for (Map.Entry<Double, CausalPass> e : plans.entrySet()) {
                CausalPass plan = e.getValue();
                plan.resetCounts();
                long start = System.nanoTime();
                long bytes = decodeRun(plan, tokens, context, steps, seq, tok);
                ms.get(e.getKey())[i] = (System.nanoTime() - start) / 1e6 / steps;
                kvBytes.put(e.getKey(), bytes);
                for (int layer : plan.routedLayers()) {
                    routing.get(e.getKey())[0] += plan.routedTokens(layer);
                    routing.get(e.getKey())[1] += plan.decisions(layer);
                }
            }
        }
        for (Map.Entry<Double, CausalPass> e : plans.entrySet()) {
            long[] r = routing.get(e.getKey());
            result.put(e.getKey(), new Measurement(ms.get(e.getKey()), r[1] == 0 ? null : (double) r[0] / r[1],
                    kvBytes.get(e.getKey()), e.getValue().denseCacheBytes((long) batch * seqLen), null));
        }
    }

    /** A causal pass of the row's model on the device, holding every sequence's first `context` tokens (room for T). */
    private CausalPass decodePlan(StudyDevice device, Double capacity, int seqLen, int[][] tokens, int context) {
        Model m = StudyRunner.modelFor(model, capacity);
        RoutingRule rule = capacity != null ? RoutingRule.CALIBRATED : RoutingRule.ROUTER;
        // experts take a row causally by calibrated thresholds, in the dense row too (its blocks are not routed)
        if (capacity != null || m.config().hasExperts()) {
            int[][] calibration = StudyRunner.tokens(settings.seed(), model.config().vocabSize(), Math.max(4, settings.batch()), seqLen, 1);
            m = m.withCalibration(CausalPlan.calibrate(m, device.calibrationKernels(), calibration));
        }
        CausalPass plan = device.openCausal(m, rule, tokens.length, context, seqLen);
        try {
            for (int b = 0; b < tokens.length; b++) {
                plan.prefill(b, Arrays.copyOf(tokens[b], context));
            }
        } catch (RuntimeException e) {
            plan.close();
            throw e;
        }
        return plan;
    }

    /**
     * s decode steps of every sequence from `context` on, then the caches rolled back; the cache bytes at the
     * end. seq and tok are scratch of one entry per sequence, so that a timed run allocates nothing.
     */
    private static long decodeRun(CausalPass plan, int[][] tokens, int context, int steps, int[] seq, int[] tok) {
        int batch = tokens.length;
        for (int s = 0; s < steps; s++) {
            for (int b = 0; b < batch; b++) {
                seq[b] = b;
                tok[b] = tokens[b][context + s];
            }
            plan.run(seq, tok, batch);
        }
        long bytes = plan.cacheBytes();
        for (int b = 0; b < batch; b++) {
            plan.truncate(b, context);
        }
        return bytes;
    }

}
