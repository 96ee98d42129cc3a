package dev.mod.sweep;

import dev.mod.ModException;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelCost;
import dev.mod.train.TrainSettings;
import dev.mod.plan.RoutingRule;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * One training run of a sweep: a size and a variant at a budget, with the steps and learning rate the spec's
 * rules give it. Its folder is runs/{name}, a normal `mod train` run folder.
 *
 * @param name    budget, size and variant, e.g. "b3.16e12-d96-l3-mod-c0.25", and the seed where the spec trains
 *                several, "b3.16e12-d96-l3-mod-c0.25-s1"
 * @param variant "dense", "mod" (the sweep's capacity, every other block), an ablation or a curve at another
 *                capacity (SweepSpec.CapacityCurves): "mod-c{C}", an ablation: "mod-every-block", "mod-stochastic",
 *                "mod-gaussian", or a mixture of experts (SweepSpec.ExpertVariants): "moe", "moe-reduced",
 *                "mode-integrated", "mode-staged"
 */
public record SweepRun(String name, double budget, SweepSpec.Size size, String variant, ModelConfig config,
                       RoutingRule routing, long seed, int steps, double lr, int warmup) {

    public boolean dense() {
        return config.routedLayers().isEmpty();
    }

    /** Whether the run is one of the isoFLOP grid (dense or MoD at the sweep's setting) rather than an ablation. */
    public boolean isoFlop() {
        return variant.equals("dense") || variant.equals("mod");
    }

    /** Whether the run is one of the mixture-of-experts variants (SweepSpec.ExpertVariants). */
    public boolean experts() {
        return config.hasExperts();
    }

    /** FLOPs of the feed-forwards of one forward pass over one sequence of T tokens, per token. */
    public double feedForwardFlopsPerToken(int seqLen) {
        double flops = 0;
        for (int layer = 0; layer < config.nLayers(); layer++) {
            flops += ModelCost.feedForwardFlops(config, config.tokensProcessed(layer, seqLen));
        }
        return flops / seqLen;
    }

    /** FLOPs of one forward pass over one sequence of T tokens (as `mod info` counts them). */
    public double forwardFlops(int seqLen) {
        return ModelCost.forwardFlops(config, seqLen);
    }

    /** Every parameter of the language model (the causal predictor, which never changes it, left out). */
    public long params() {
        return config.tensorShapes().values().stream().mapToLong(s -> {
            long n = 1;
            for (long d : s) {
                n *= d;
            }
            return n;
        }).sum();
    }

    /** The `mod train` settings of this run. */
    public TrainSettings settings(SweepSpec spec) {
        return settings(spec, steps, warmup, spec.evalBatches(), Math.max(1, (steps + 3) / 4));
    }

    /**
     * The settings of a short run with this run's model, batch and step (`mod sweep time`): n steps, one held-out
     * batch and one checkpoint at the end, which the step times leave out.
     */
    public TrainSettings timingSettings(SweepSpec spec, int n) {
        return settings(spec, n, Math.min(warmup, n), 1, n);
    }

    private TrainSettings settings(SweepSpec spec, int steps, int warmup, int evalBatches, int checkpointEvery) {
        int predictor = predictorDim(spec, config, routing);
        double auxRouter = dense() || routing instanceof RoutingRule.Stochastic ? 0 : spec.auxRouter();
        return new TrainSettings("sweep:" + size.name(), config.toJsonTree(), predictor, routing, seed, spec.data(),
                spec.maxDataBytes(), steps, spec.batch(), spec.seqLen(), lr, warmup, spec.minLrRatio(), spec.weightDecay(),
                spec.clip(), auxRouter, spec.auxPredictor(), steps, evalBatches, checkpointEvery);
    }

    /**
     * Every run of the spec, in a fixed order: seed by seed (so that a sweep stopped part way has whole passes first),
     * and in each, budgets ascending, then the sizes trained at the budget, dense then MoD; then the ablations, the curves
     * at other capacities and the mixtures of experts.
     */
    public static List<SweepRun> plan(SweepSpec spec) {
        List<SweepRun> runs = new ArrayList<>();
        for (int s = 0; s < spec.seeds(); s++) {
            runs.addAll(plan(spec, spec.seed() + s));
        }
        return runs;
    }

    // the runs of one seed
    private static List<SweepRun> plan(SweepSpec spec, long seed) {
        List<SweepRun> runs = new ArrayList<>();
        for (double budget : spec.budgets()) {
            for (SweepSpec.Size size : spec.sizes().stream().filter(s -> s.trainedAt(budget)).toList()) {
                ModelConfig mod = spec.config(size);
                runs.add(of(spec, budget, size, "dense", mod.dense(), RoutingRule.TOP_K, seed));
                runs.add(of(spec, budget, size, "mod", mod, RoutingRule.TOP_K, seed));
            }
        }
        SweepSpec.Ablation a = spec.ablation();
        if (a != null) {
            SweepSpec.Size size = spec.size(a.size());
            ModelConfig mod = spec.config(size);
            for (double c : a.capacities()) {
                if (c != spec.capacity()) {
                    runs.add(of(spec, a.budget(), size, capacityVariant(c), mod.withRouting(c, mod.routedLayers()),
                            RoutingRule.TOP_K, seed));
                }
            }
            if (a.everyBlock()) {
                List<Integer> all = new ArrayList<>();
                for (int i = 0; i < mod.nLayers(); i++) {
                    all.add(i);
                }
                runs.add(of(spec, a.budget(), size, "mod-every-block", mod.withRouting(spec.capacity(), all),
                        RoutingRule.TOP_K, seed));
            }
            if (a.stochastic()) {
                runs.add(of(spec, a.budget(), size, "mod-stochastic", mod, RoutingRule.STOCHASTIC, seed));
            }
            if (a.gaussian()) {
                runs.add(of(spec, a.budget(), size, "mod-gaussian", mod, RoutingRule.GAUSSIAN, seed));
            }
        }
        SweepSpec.CapacityCurves curves = spec.capacityCurves();
        if (curves != null) {
            for (double budget : curves.budgets()) {
                for (double c : curves.capacities()) {
                    for (SweepSpec.Size size : spec.sizes().stream().filter(s -> s.trainedAt(budget)).toList()) {
                        ModelConfig mod = spec.config(size);
                        SweepRun run = of(spec, budget, size, capacityVariant(c), mod.withRouting(c, mod.routedLayers()), RoutingRule.TOP_K, seed);
                        // the capacity ablation's run at its size is this curve's point there: trained once
                        if (runs.stream().noneMatch(r -> r.name().equals(run.name()))) {
                            runs.add(run);
                        }
                    }
                }
            }
        }
        SweepSpec.ExpertVariants experts = spec.experts();
        if (experts != null) {
            for (SweepSpec.Size size : spec.sizes().stream().filter(s -> s.trainedAt(experts.budget())).toList()) {
                for (String variant : SweepSpec.ExpertVariants.VARIANTS) {
                    runs.add(of(spec, experts.budget(), size, variant, experts.config(variant, spec.config(size)), RoutingRule.TOP_K, seed));
                }
            }
        }
        return runs;
    }

    /** The variant of MoD at capacity c, every other block routed: "mod-c0.25". */
    public static String capacityVariant(double c) {
        return "mod-c" + number(c);
    }

    // A stochastic run's router BCE would chase random targets, and its predictor would learn nothing.
    private static int predictorDim(SweepSpec spec, ModelConfig config, RoutingRule routing) {
        return config.routedLayers().isEmpty() || routing instanceof RoutingRule.Stochastic ? 0 : spec.predictorDim();
    }

    /**
     * The training FLOPs of one step: 3 x batch x forward FLOPs of one sequence, and with count_predictor_flops the
     * predictors' (ModelCost.predictorTrainingFlops) x batch.
     */
    static double trainingFlopsPerStep(SweepSpec spec, ModelConfig config, RoutingRule routing) {
        double flops = 3.0 * spec.batch() * ModelCost.forwardFlops(config, spec.seqLen());
        if (spec.countPredictorFlops()) {
            flops += spec.batch() * ModelCost.predictorTrainingFlops(config, predictorDim(spec, config, routing), spec.seqLen());
        }
        return flops;
    }

    /** The training FLOPs of one step of this run (see trainingFlopsPerStep). */
    public double trainingFlopsPerStep(SweepSpec spec) {
        return trainingFlopsPerStep(spec, config, routing);
    }

    /**
     * The step-count rule: the budget over the training FLOPs of a step, rounded to the nearest step; a run below the
     * spec's min_steps is refused.
     */
    static int steps(double perStep, double budget) {
        double steps = Math.rint(budget / perStep);
        if (steps > Integer.MAX_VALUE - 1) {
            throw new ModException("sweep spec: budget " + budget + " gives " + steps + " steps, more than a run can take");
        }
        return (int) steps;
    }

    /**
     * The learning-rate rule: lr x the variant's multiplier x sqrt(lr_reference_dim / dim); a variant without its own
     * multiplier takes MoD's when it routes blocks (the ablations, mode-staged) and dense's when it does not (moe ...).
     */
    static double learningRate(SweepSpec spec, ModelConfig config, String variant) {
        Double multiplier = spec.lrMultipliers().get(variant);
        if (multiplier == null && !variant.equals("dense")) {
            multiplier = spec.lrMultipliers().get(config.routedLayers().isEmpty() ? "dense" : "mod");
        }
        return spec.lr() * (multiplier == null ? 1 : multiplier) * Math.sqrt((double) spec.lrReferenceDim() / config.dim());
    }

    private static SweepRun of(SweepSpec spec, double budget, SweepSpec.Size size, String variant, ModelConfig config,
                               RoutingRule routing, long seed) {
        int steps = steps(trainingFlopsPerStep(spec, config, routing), budget);
        String name = "b" + number(budget) + "-" + size.name() + "-" + variant + (spec.seeds() > 1 ? "-s" + seed : "");
        if (steps < spec.minSteps()) {
            throw new ModException("sweep spec: run " + name + " gets " + steps + " steps at budget " + budget
                    + ", fewer than min_steps " + spec.minSteps() + " (a larger budget or a smaller size)");
        }
        int warmup = Math.max(1, (int) Math.round(spec.warmupFraction() * steps));
        return new SweepRun(name, budget, size, variant, config, routing, seed, steps, learningRate(spec, config, variant), warmup);
    }

    /** A number as short as it can be said: 3.16e12, 1e13, 0.25. */
    static String number(double v) {
        if (v >= 1e5) {
            String mantissa = String.format(Locale.ROOT, "%.2e", v);
            String[] parts = mantissa.split("e");
            String m = parts[0].replaceAll("0+$", "").replaceAll("\\.$", "");
            return m + "e" + Integer.parseInt(parts[1]);
        }
        String s = Double.toString(v);
        return s.endsWith(".0") ? s.substring(0, s.length() - 2) : s;
    }
}
