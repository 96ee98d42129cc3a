package dev.mod.sweep;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mod.ModException;
import dev.mod.StrictJson;
import dev.mod.data.JdkSourceText;
import dev.mod.model.Experts;
import dev.mod.model.ModelConfig;
import dev.mod.model.RouterWeighting;
import dev.mod.train.TrainSettings;

import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What an isoFLOP sweep trains: at each training-FLOP budget, every model size as a dense baseline and as MoD
 * (capacity C, every other block routed, learned routing with the paper's auxiliary router loss and a causal
 * predictor), plus routing ablations at one budget and size and, optionally, MoD's curves at other capacities and the
 * mixture-of-experts variants. Everything else (data, batch, optimizer, the
 * learning-rate rule) is shared by every run, so two runs differ only in what the sweep varies.
 *
 * <p>Rules: a run takes round(budget / (3 x batch x forward FLOPs of one sequence)) steps (the training FLOPs
 * `mod train` counts: forward, input gradient, weight gradient), and with count_predictor_flops the predictor's
 * training FLOPs are part of a step's (ModelCost.predictorTrainingFlops); its peak learning rate is
 * lr x m x sqrt(lr_reference_dim / dim) (wider models take smaller steps; m is lr_multipliers' entry for the run's
 * variant, for an ablation "mod" unless it has its own, 1 without one: the multipliers a short search at the
 * smallest budget chose, recorded with the sweep), warm-up is warmup_fraction of its
 * steps (at least one), and the cosine schedule ends at min_lr_ratio of the peak.
 */
public record SweepSpec(
        @JsonProperty("data") String data,
        @JsonProperty("max_data_bytes") int maxDataBytes,
        @JsonProperty("seq_len") int seqLen,
        @JsonProperty("batch") int batch,
        @JsonProperty("seed") long seed,
        @JsonProperty("seeds") int seeds,
        @JsonProperty("budgets") List<Double> budgets,
        @JsonProperty("sizes") List<Size> sizes,
        @JsonProperty("capacity") double capacity,
        @JsonProperty("predictor_dim") int predictorDim,
        @JsonProperty("count_predictor_flops") boolean countPredictorFlops,
        @JsonProperty("lr") double lr,
        @JsonProperty("lr_multipliers") Map<String, Double> lrMultipliers,
        @JsonProperty("lr_reference_dim") int lrReferenceDim,
        @JsonProperty("warmup_fraction") double warmupFraction,
        @JsonProperty("min_lr_ratio") double minLrRatio,
        @JsonProperty("weight_decay") double weightDecay,
        @JsonProperty("clip") double clip,
        @JsonProperty("aux_router") double auxRouter,
        @JsonProperty("aux_predictor") double auxPredictor,
        @JsonProperty("eval_batches") int evalBatches,
        @JsonProperty("min_steps") int minSteps,
        @JsonProperty("ablation") Ablation ablation,
        @JsonProperty("experts") @JsonInclude(JsonInclude.Include.NON_NULL) ExpertVariants experts,
        @JsonProperty("capacity_curves") @JsonInclude(JsonInclude.Include.NON_NULL) CapacityCurves capacityCurves) {

    /** A spec without the mixture-of-experts variants and the curves at other capacities. */
    public SweepSpec(String data, int maxDataBytes, int seqLen, int batch, long seed, int seeds, List<Double> budgets, List<Size> sizes,
                     double capacity, int predictorDim, boolean countPredictorFlops, double lr, Map<String, Double> lrMultipliers,
                     int lrReferenceDim, double warmupFraction, double minLrRatio, double weightDecay, double clip, double auxRouter,
                     double auxPredictor, int evalBatches, int minSteps, Ablation ablation) {
        this(data, maxDataBytes, seqLen, batch, seed, seeds, budgets, sizes, capacity, predictorDim, countPredictorFlops, lr,
                lrMultipliers, lrReferenceDim, warmupFraction, minLrRatio, weightDecay, clip, auxRouter, auxPredictor, evalBatches,
                minSteps, ablation, null, null);
    }

    private static final ObjectMapper JSON = StrictJson.mapper()
            .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
            .enable(DeserializationFeature.FAIL_ON_MISSING_CREATOR_PROPERTIES)
            .enable(SerializationFeature.INDENT_OUTPUT);

    /**
     * A model size of the family: a Llama-style decoder with the byte vocabulary, trained at the budgets it lists, or
     * at every budget without a list (so that each budget's sizes can bracket that budget's optimum without training
     * the far ends of the family at every budget). A spec written before "budgets" existed reads as every budget.
     */
    public record Size(
            @JsonProperty("name") String name,
            @JsonProperty("dim") int dim,
            @JsonProperty("n_layers") int nLayers,
            @JsonProperty("n_heads") int nHeads,
            @JsonProperty("hidden_dim") int hiddenDim,
            @JsonProperty("budgets") @JsonInclude(JsonInclude.Include.NON_NULL) List<Double> budgets) {

        /** A size trained at every budget. */
        public Size(String name, int dim, int nLayers, int nHeads, int hiddenDim) {
            this(name, dim, nLayers, nHeads, hiddenDim, null);
        }

        public boolean trainedAt(double budget) {
            return budgets == null || budgets.contains(budget);
        }
    }

    /**
     * The ablations, all at one budget and size: other capacities (every other block), every block routed
     * (at the sweep's capacity), and the stochastic controls (every other block): top-k over uniform scores with the
     * router weighting the outputs ("stochastic"), and the paper's, router weights sampled from a Gaussian ("gaussian").
     * A spec written before "gaussian" existed reads as false.
     */
    public record Ablation(
            @JsonProperty("budget") double budget,
            @JsonProperty("size") String size,
            @JsonProperty("capacities") List<Double> capacities,
            @JsonProperty("every_block") boolean everyBlock,
            @JsonProperty("stochastic") boolean stochastic,
            @JsonProperty("gaussian") boolean gaussian) {
    }

    /**
     * The mixture-of-experts variants (the paper's MoDE, its Figure 7), every size trained at the budget, each block's
     * feed-forward count SwiGLU experts of the size's hidden_dim chosen by expert choice (model.Experts):
     * "moe" at capacity 1/count each, so that a token is processed once on average and a feed-forward costs what the
     * dense one does; "moe-reduced" at reduced_capacity each (fewer FLOPs); "mode-integrated" the same with no_ops no-op
     * experts among them (the same FLOPs as moe-reduced: the no-op experts compute nothing); "mode-staged" MoD's routing
     * (the sweep's capacity, every other block) around moe's experts.
     */
    public record ExpertVariants(
            @JsonProperty("budget") double budget,
            @JsonProperty("count") int count,
            @JsonProperty("no_ops") int noOps,
            @JsonProperty("reduced_capacity") double reducedCapacity) {

        /** The variants' names, in the order the plan trains them. */
        public static final List<String> VARIANTS = List.of("moe", "moe-reduced", "mode-integrated", "mode-staged");

        /** The config of a variant of a size's MoD config (the sweep's capacity and routed layers). */
        public ModelConfig config(String variant, ModelConfig mod) {
            Experts full = new Experts(count, 0, 1.0 / count, mod.hiddenDim());
            return switch (variant) {
                case "moe" -> mod.dense().withExperts(full);
                case "moe-reduced" -> mod.dense().withExperts(new Experts(count, 0, reducedCapacity, mod.hiddenDim()));
                case "mode-integrated" -> mod.dense().withExperts(new Experts(count, noOps, reducedCapacity, mod.hiddenDim()));
                case "mode-staged" -> mod.withExperts(full);
                default -> throw new IllegalArgumentException(variant);
            };
        }
    }

    /**
     * MoD isoFLOP curves at other capacities than the sweep's (every other block routed): every size trained at each of
     * budgets, once per capacity, as variant "mod-c{C}" (the ablation's name, so the ablation's run is the curve's point
     * at its size). The capacity ablation trains one size, which cannot say where another capacity's optimum lies.
     */
    public record CapacityCurves(
            @JsonProperty("budgets") List<Double> budgets,
            @JsonProperty("capacities") List<Double> capacities) {

        public boolean at(double budget) {
            return budgets.contains(budget);
        }
    }

    public SweepSpec {
        require(data != null && !data.isBlank(), "data must name the training text (a path or jdk-src)");
        require(maxDataBytes > 0, "max_data_bytes must be positive");
        require(seqLen >= 8, "seq_len must be at least 8");
        require(batch >= 1, "batch must be at least 1");
        require(seeds >= 1 && seeds <= 100, "seeds must be from 1 to 100 (every run is trained with seeds seed, seed + 1, ...), got " + seeds);
        require(budgets != null && budgets.size() >= 1, "budgets must list at least one training-FLOP budget");
        for (Double b : budgets) {
            require(b != null && b > 0 && Double.isFinite(b), "budgets must be positive numbers, got " + b);
        }
        require(new HashSet<>(budgets).size() == budgets.size(), "budgets must not repeat");
        require(budgets.equals(budgets.stream().sorted().toList()), "budgets must be in increasing order");
        require(sizes != null && sizes.size() >= 1, "sizes must list at least one model size");
        Set<String> names = new HashSet<>();
        for (Size s : sizes) {
            require(s != null && s.name() != null && s.name().matches("[A-Za-z0-9._-]+"),
                    "every size needs a name of letters, digits, '.', '_' or '-'");
            require(names.add(s.name()), "size name " + s.name() + " is given twice");
            if (s.budgets() != null) {
                require(!s.budgets().isEmpty() && budgets.containsAll(s.budgets()) && new HashSet<>(s.budgets()).size() == s.budgets().size(),
                        "size " + s.name() + ": budgets must list some of the sweep's budgets, each once, got " + s.budgets());
            }
        }
        for (double b : budgets) {
            require(sizes.stream().anyMatch(s -> s.trainedAt(b)), "no size is trained at budget " + b);
        }
        require(capacity > 0 && capacity < 1, "capacity must be in (0, 1), got " + capacity);
        require(predictorDim >= 0, "predictor_dim must be >= 0");
        require(lr > 0 && Double.isFinite(lr), "lr must be a positive number");
        require(lrMultipliers != null, "lr_multipliers must be an object (it may be empty)");
        for (Map.Entry<String, Double> m : lrMultipliers.entrySet()) {
            require(m.getValue() != null && m.getValue() > 0 && Double.isFinite(m.getValue()),
                    "lr_multipliers." + m.getKey() + " must be a positive number");
            require(m.getKey().equals("dense") || m.getKey().equals("mod") || m.getKey().startsWith("mod-")
                            || ExpertVariants.VARIANTS.contains(m.getKey()),
                    "lr_multipliers names variants (dense, mod, mod-..., " + String.join(", ", ExpertVariants.VARIANTS) + "), not \""
                            + m.getKey() + "\"");
        }
        require(lrReferenceDim > 0, "lr_reference_dim must be positive");
        require(warmupFraction >= 0 && warmupFraction < 1, "warmup_fraction must be in [0, 1)");
        require(minLrRatio >= 0 && minLrRatio <= 1, "min_lr_ratio must be in [0, 1]");
        require(weightDecay >= 0 && clip >= 0 && auxRouter >= 0 && auxPredictor >= 0,
                "weight_decay, clip, aux_router and aux_predictor must be >= 0");
        require(evalBatches >= 1 && evalBatches <= TrainSettings.MAX_EVAL_BATCHES,
                "eval_batches must be from 1 to " + TrainSettings.MAX_EVAL_BATCHES + ", got " + evalBatches);
        require(minSteps >= 1, "min_steps must be at least 1");
        for (Size s : sizes) {
            config(s, seqLen, capacity); // refuses a size that is not a valid model, with the config's own message
        }
        if (experts != null) {
            checkExperts(experts, budgets);
        }
        if (capacityCurves != null) {
            checkCapacityCurves(capacityCurves, budgets, capacity);
        }
        if (ablation != null) {
            require(budgets.contains(ablation.budget()), "ablation.budget " + ablation.budget() + " is not one of the budgets");
            require(names.contains(ablation.size()), "ablation.size " + ablation.size() + " is not one of the sizes");
            require(sizes.stream().anyMatch(s -> s.name().equals(ablation.size()) && s.trainedAt(ablation.budget())),
                    "ablation.size " + ablation.size() + " is not trained at ablation.budget " + ablation.budget()
                            + " (the ablations are compared with its dense and MoD runs there)");
            require(ablation.capacities() != null, "ablation.capacities must be a list (it may be empty)");
            require(new java.util.HashSet<>(ablation.capacities()).size() == ablation.capacities().size(),
                    "ablation capacities must differ (each names a run), got " + ablation.capacities());
            for (Double c : ablation.capacities()) {
                require(c != null && c > 0 && c <= 1, "ablation capacities must be in (0, 1], got " + c);
            }
        }
    }

    private static void checkExperts(ExpertVariants e, List<Double> budgets) {
        require(budgets.contains(e.budget()), "experts.budget " + e.budget() + " is not one of the budgets");
        require(e.count() >= 2 && e.count() <= Experts.MAX_EXPERTS / 2, "experts.count must be from 2 to "
                + Experts.MAX_EXPERTS / 2 + ", got " + e.count());
        require(e.noOps() >= 1 && e.noOps() <= Experts.MAX_EXPERTS / 2, "experts.no_ops must be from 1 to "
                + Experts.MAX_EXPERTS / 2 + " (integrated MoDE needs one), got " + e.noOps());
        require(e.reducedCapacity() > 0 && e.reducedCapacity() < 1.0 / e.count(),
                "experts.reduced_capacity must be above 0 and below 1 / count = " + 1.0 / e.count() + ", got " + e.reducedCapacity());
    }

    private static void checkCapacityCurves(CapacityCurves c, List<Double> budgets, double capacity) {
        require(c.budgets() != null && !c.budgets().isEmpty() && budgets.containsAll(c.budgets())
                        && new HashSet<>(c.budgets()).size() == c.budgets().size(),
                "capacity_curves.budgets must list some of the sweep's budgets, each once, got " + c.budgets());
        require(c.capacities() != null && !c.capacities().isEmpty() && new HashSet<>(c.capacities()).size() == c.capacities().size(),
                "capacity_curves.capacities must list at least one capacity, each once, got " + c.capacities());
        for (Double x : c.capacities()) {
            require(x != null && x > 0 && x < 1, "capacity_curves.capacities must be in (0, 1), got " + x);
            require(x != capacity, "capacity_curves.capacities: " + x + " is the sweep's capacity (its curve is the MoD curve)");
        }
    }

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new ModException("sweep spec: " + message);
        }
    }

    /** The MoD config of a size: byte vocabulary, context seq_len, the sweep's capacity on every other block. */
    public ModelConfig config(Size s) {
        return config(s, seqLen, capacity);
    }

    // fields are not assigned yet when the compact constructor checks the sizes: the values come as arguments
    private static ModelConfig config(Size s, int seqLen, double capacity) {
        try {
            return new ModelConfig(258, s.dim(), s.nLayers(), s.nHeads(), s.nHeads(), s.hiddenDim(), 1e-5, 10000, seqLen,
                    capacity, ModelConfig.everyOtherLayer(s.nLayers()), RouterWeighting.RAW);
        } catch (ModException e) {
            throw new ModException("sweep spec: size " + s.name() + ": " + e.getMessage(), e);
        }
    }

    public Size size(String name) {
        return sizes.stream().filter(s -> s.name().equals(name)).findFirst().orElseThrow();
    }

    public String toJson() {
        try {
            return JSON.writeValueAsString(this);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    public JsonNode toJsonTree() {
        return JSON.valueToTree(this);
    }

    /** Reads a spec; every field is required, unknown fields are errors. */
    public static SweepSpec fromJson(String json, String source) {
        return StrictJson.read(JSON, withLaterFields(json), SweepSpec.class, source + ": not a sweep spec");
    }

    // a spec written before a field existed, with that field as the runs it made had it (seeds: 1;
    // count_predictor_flops: false; lr_multipliers: none; ablation.gaussian: false; a size's budgets: all; experts: none;
    // capacity_curves: none)
    private static String withLaterFields(String json) {
        try {
            if (JSON.readTree(json) instanceof ObjectNode tree) {
                if (tree.has("seed") && !tree.has("seeds")) {
                    tree.put("seeds", 1);
                }
                if (tree.has("predictor_dim") && !tree.has("count_predictor_flops")) {
                    tree.put("count_predictor_flops", false);
                }
                if (tree.has("lr") && !tree.has("lr_multipliers")) {
                    tree.putObject("lr_multipliers");
                }
                if (tree.get("sizes") != null) {
                    for (JsonNode size : tree.get("sizes")) {
                        if (size instanceof ObjectNode o && !o.has("budgets")) {
                            o.putNull("budgets");
                        }
                    }
                }
                if (tree.has("ablation") && !tree.has("experts")) {
                    tree.putNull("experts");
                }
                if (tree.has("ablation") && !tree.has("capacity_curves")) {
                    tree.putNull("capacity_curves");
                }
                if (tree.get("ablation") instanceof ObjectNode a && !a.has("gaussian")) {
                    a.put("gaussian", false);
                }
                return JSON.writeValueAsString(tree);
            }
        } catch (JsonProcessingException e) {
            // not JSON: StrictJson.read says so
        }
        return json;
    }

    /**
     * The built-in sweep, sized for about an hour on 2 cores (Zen 5): byte-level JDK sources, T = 128,
     * batches of 16; budgets 1e12, 3.16e12 and 1e13 training FLOPs; six sizes from 0.04M to 1.6M parameters (the
     * byte vocabulary's embeddings are a large share of the smallest); ablations at the middle budget on d96-l3.
     */
    public static SweepSpec defaults() {
        return of(List.of(1e12, 3.16e12, 1e13), FAMILY, 16, 20);
    }

    /** The four smallest sizes at a tenth of the budgets, fewer evaluation windows: a few minutes. */
    public static SweepSpec quick() {
        return of(List.of(1e11, 3.16e11, 1e12), FAMILY.subList(0, 4), 4, 5);
    }

    /**
     * The paper's headline claim at this scale (issue: a deeper family, a real held-out set, seeds): six sizes of 6 and
     * 8 layers (every other block routed, so 3 or 4 routed blocks), four at each budget, bracketing the budget's optimum
     * by the rule of thumb of 20 tokens a parameter (0.29M at 1e13, 0.51M at 3.16e13, 0.91M at 1e14) from 0.4-0.7x below
     * to 3-5x above (MoD's optimum lies above dense's), and a fifth at 1e14, d192-l8, added when MoD's d160-l8 there
     * beat its d128-l6 (so the largest size did not bracket MoD's optimum; the runs before it are unchanged by it),
     * budgets 1e13, 3.16e13 and 1e14, two seeds (the first seed's pass runs first),
     * held-out whole files (jdk-src-files) and evaluation batches that cover them (400 x 16 windows of 128 bytes for
     * about 800 KB), the predictor's FLOPs counted, and ablations at 3.16e13 on the 6-layer d96 with both stochastic
     * controls. Learning-rate multipliers 2 for both variants, chosen at 1e13 on d64, d96 and d128-l6 from 1, 2 and 4
     * (results/lr-search-1e13-dev-machine). And MoD's isoFLOP curves at capacity 0.5 at 1e13 and 3.16e13, added when
     * 50% was the ablations' best capacity and beat the dense optimum at 3.16e13 on d96-l6 (the runs before them are
     * unchanged by them; not at 1e14, whose eight runs would take about three hours on two cores).
     */
    public static SweepSpec paper() {
        return new SweepSpec(JdkSourceText.FILES_NAME, 8_000_000, 128, 16, 0, 2, List.of(1e13, 3.16e13, 1e14), PAPER_FAMILY, 0.125,
                16, true, 2e-3, Map.of("dense", 2.0, "mod", 2.0), 128, 0.05, 0.1, 0.1, 1.0, 0.01, 1.0, 400, 20,
                new Ablation(3.16e13, "d96-l6", List.of(0.25, 0.5), true, true, true), null,
                new CapacityCurves(List.of(1e13, 3.16e13), List.of(0.5)));
    }

    private static final List<Size> PAPER_FAMILY = List.of(
            new Size("d48-l6", 48, 6, 3, 132, List.of(1e13)),
            new Size("d64-l6", 64, 6, 4, 176),
            new Size("d96-l6", 96, 6, 6, 264),
            new Size("d128-l6", 128, 6, 8, 352),
            new Size("d160-l8", 160, 8, 10, 440, List.of(3.16e13, 1e14)),
            new Size("d192-l8", 192, 8, 12, 528, List.of(1e14)));

    private static final List<Size> FAMILY = List.of(
            new Size("d32-l2", 32, 2, 2, 88),
            new Size("d48-l2", 48, 2, 3, 128),
            new Size("d64-l2", 64, 2, 2, 176),
            new Size("d96-l3", 96, 3, 3, 256),
            new Size("d128-l4", 128, 4, 4, 352),
            new Size("d160-l5", 160, 5, 5, 432));

    private static SweepSpec of(List<Double> budgets, List<Size> sizes, int evalBatches, int minSteps) {
        return new SweepSpec("jdk-src", 8_000_000, 128, 16, 0, 1, budgets, sizes, 0.125, 16, false, 2e-3, Map.of(), 128, 0.05, 0.1, 0.1,
                1.0, 0.01, 1.0, evalBatches, minSteps,
                new Ablation(budgets.get(1), "d96-l3", List.of(0.25, 0.5), true, true, false));
    }
}
