package dev.mod.plan;

import com.fasterxml.jackson.annotation.JsonCreator;
import com.fasterxml.jackson.annotation.JsonValue;
import dev.mod.ModException;
import dev.mod.model.Model;
import dev.mod.model.Rng;
import dev.mod.model.RouterWeights;
import dev.mod.model.Tensor;

import java.util.List;

/**
 * How a routed layer picks the tokens it processes (BlockStep.SELECT). Every rule is a record here, and each supplies in
 * one place its name (on the command line and in settings files), whether it is causal, its decision on the host, the
 * decision a device runs (Device) and what training does with it (Training). A new rule that decides like an existing
 * one (a threshold on the router's logit, say) is a new record here and nothing else; one that computes something new
 * adds that computation to each executor that runs it.
 *
 * Top-k over the sequence is the paper's rule and what training routes with; it is not causal (a token's selection
 * depends on later tokens), so generation routes with a causal rule, which decides each token from its own residual
 * stream alone, so that prefill and decode make the same decision.
 */
public sealed interface RoutingRule {
    /** The rule's name, as --routing takes it. */
    String name();

    /** The rule's name in training settings files (where top-k has always been "learned"). */
    @JsonValue
    default String settingsName() {
        return name();
    }

    /** Whether a token's decision depends on that token alone (what generation needs). */
    boolean causal();

    /** How a device decides: top-k over the sequence, the router's logit against a threshold, or the predictor. */
    record Device(Kind kind, double logitThreshold) {
        public enum Kind { TOP_K, LOGIT_ABOVE, PREDICTOR }
    }

    /** The decision a device runs for a routed layer of model. */
    Device device(Model model, int layer);

    /**
     * What a training run does with the rule: routes with it (top-k over the router's logits or over random scores), or
     * trains it beside the language model, by the router's auxiliary BCE loss or the predictor's, or not at all (the
     * calibrated rule's thresholds are set after training, by `mod calibrate`).
     */
    enum Training { ROUTES, ROUTER_BCE, PREDICTOR_BCE, CALIBRATED_AFTER }

    Training training();

    /** Refuses a rule the model cannot run (the predictor without predictor tensors, calibrated without thresholds). */
    default void checkAgainst(Model model) {
    }

    /** What a causal pass checks first: the rule is causal, and the model can run it. */
    default void checkCausal(Model model) {
        if (!causal()) {
            throw new ModException("routing: rule \"" + name() + "\" is not causal (it looks at later tokens); a causal pass "
                    + "(generation, forward --routing) takes router, predictor or calibrated");
        }
        checkAgainst(model);
    }

    /**
     * The host's decision of a causal rule in a routed layer: routed[i] = 1 where it processes row i of x[n, d], whose
     * router logits are r[n]; scratch holds scratchFloats(model, n) floats.
     */
    default void decide(Kernels k, Model model, RouterWeights<Tensor> w, int layer, float[] x, float[] r, int n, int[] routed,
                        float[] scratch) {
        throw new IllegalStateException("rule " + name() + " is not causal: it decides over the whole sequence");
    }

    /**
     * What the top-k of a training batch ranks, and what weights the processed tokens' outputs: the router's logits for
     * both; or random scores drawn from the batch's draw and the layer (the same for the same draw, so a resumed run and
     * an evaluation are reproducible), uniform ones with the router still weighting, or Gaussian ones that also weight
     * (the router's weights replaced by samples, as the paper's control).
     */
    enum Scores { ROUTER, UNIFORM, GAUSSIAN }

    default Scores scores() {
        return Scores.ROUTER;
    }

    /** Floats of scratch decide() needs for n rows. */
    default int scratchFloats(Model model, int n) {
        return 0;
    }

    /** The top-k over the router's logits: the paper's rule, what training and `mod forward` route with. */
    record TopK() implements RoutingRule {
        @Override
        public String name() {
            return "topk";
        }

        @Override
        public String settingsName() {
            return "learned";
        }

        @Override
        public boolean causal() {
            return false;
        }

        @Override
        public Device device(Model model, int layer) {
            return new Device(Device.Kind.TOP_K, Double.NaN);
        }

        @Override
        public Training training() {
            return Training.ROUTES;
        }
    }

    /**
     * A training control, top-k over random scores drawn afresh for every batch: "stochastic", uniform scores while the
     * router still weights the processed tokens' outputs by g(r); "gaussian", the paper's control, router weights sampled
     * from a standard normal (Rng.gaussian), top-k over them, and the outputs weighted by g of the samples, so that the
     * router takes no part.
     */
    record Stochastic(Scores scores) implements RoutingRule {
        @Override
        public String name() {
            return scores == Scores.GAUSSIAN ? "gaussian" : "stochastic";
        }

        @Override
        public boolean causal() {
            return false;
        }

        @Override
        public Device device(Model model, int layer) {
            throw new ModException("routing: rule \"" + name() + "\" is a training control; a model runs with its router");
        }

        @Override
        public Training training() {
            return Training.ROUTES;
        }
    }

    /** sigmoid(router logit) > threshold (0.5 by default: what the router's auxiliary BCE loss trains for). */
    record Router(double threshold) implements RoutingRule {
        public Router {
            if (!(threshold > 0 && threshold < 1)) {
                throw new ModException("routing: threshold must be in (0, 1), got " + threshold);
            }
        }

        @Override
        public String name() {
            return "router";
        }

        @Override
        public boolean causal() {
            return true;
        }

        /** sigmoid(r) > t is r > ln(t / (1 - t)). */
        public double logitThreshold() {
            return Math.log(threshold / (1 - threshold));
        }

        @Override
        public Device device(Model model, int layer) {
            return new Device(Device.Kind.LOGIT_ABOVE, logitThreshold());
        }

        @Override
        public Training training() {
            return Training.ROUTER_BCE;
        }

        @Override
        public void decide(Kernels k, Model model, RouterWeights<Tensor> w, int layer, float[] x, float[] r, int n, int[] routed,
                           float[] scratch) {
            above(r, n, logitThreshold(), routed);
        }
    }

    /** The auxiliary predictor's sigmoid(w2 . silu(w1 . x)) > 0.5, on the layer's input x. */
    record Predictor() implements RoutingRule {
        @Override
        public String name() {
            return "predictor";
        }

        @Override
        public boolean causal() {
            return true;
        }

        @Override
        public Device device(Model model, int layer) {
            return new Device(Device.Kind.PREDICTOR, Double.NaN);
        }

        @Override
        public Training training() {
            return Training.PREDICTOR_BCE;
        }

        @Override
        public void checkAgainst(Model model) {
            if (model.predictorDim() == 0) {
                throw new ModException("routing: rule \"predictor\" needs the tensors layers.{i}.predictor.w1.weight and "
                        + "layers.{i}.predictor.w2.weight, which this model does not have");
            }
        }

        @Override
        public int scratchFloats(Model model, int n) {
            return n * model.predictorDim();
        }

        // hidden[n, P] = w1 . x; routed where w2[P] . silu(hidden) > 0
        @Override
        public void decide(Kernels k, Model model, RouterWeights<Tensor> w, int layer, float[] x, float[] r, int n, int[] routed,
                           float[] hidden) {
            int p = model.predictorDim();
            k.matmul(hidden, x, w.predictorW1(), n, model.config().dim(), p);
            Tensor w2 = w.predictorW2();
            for (int i = 0; i < n; i++) {
                double sum = 0;
                for (int j = 0; j < p; j++) {
                    double z = hidden[i * p + j];
                    sum += w2.get(j) * (z / (1 + Math.exp(-z)));
                }
                routed[i] = sum > 0 ? 1 : 0;
            }
        }
    }

    /** Router logit above the layer's calibrated threshold, stored in the model file by `mod calibrate`. */
    record Calibrated() implements RoutingRule {
        @Override
        public String name() {
            return "calibrated";
        }

        @Override
        public boolean causal() {
            return true;
        }

        @Override
        public Device device(Model model, int layer) {
            return new Device(Device.Kind.LOGIT_ABOVE, model.calibration().threshold(layer));
        }

        @Override
        public Training training() {
            return Training.CALIBRATED_AFTER;
        }

        @Override
        public void checkAgainst(Model model) {
            if (model.calibration() == null && !model.config().routedLayers().isEmpty()) {
                throw new ModException("routing: rule \"calibrated\" needs thresholds from `mod calibrate`, which this model does not have");
            }
        }

        @Override
        public void decide(Kernels k, Model model, RouterWeights<Tensor> w, int layer, float[] x, float[] r, int n, int[] routed,
                           float[] scratch) {
            above(r, n, model.calibration().threshold(layer), routed);
        }
    }

    // routed[i] = r[i] > threshold, i < n
    private static void above(float[] r, int n, double threshold, int[] routed) {
        for (int i = 0; i < n; i++) {
            routed[i] = r[i] > threshold ? 1 : 0;
        }
    }

    RoutingRule TOP_K = new TopK();
    RoutingRule STOCHASTIC = new Stochastic(Scores.UNIFORM);
    RoutingRule GAUSSIAN = new Stochastic(Scores.GAUSSIAN);
    RoutingRule ROUTER = new Router(0.5);
    RoutingRule PREDICTOR = new Predictor();
    RoutingRule CALIBRATED = new Calibrated();

    /** Every rule's name, for help texts. */
    List<String> NAMES = List.of("topk", "stochastic", "gaussian", "router", "predictor", "calibrated");

    /** The rule of that name (or settings name); threshold is the router rule's (the others take none). */
    static RoutingRule named(String name, double threshold) {
        return switch (name) {
            case "topk", "learned" -> TOP_K;
            case "stochastic" -> STOCHASTIC;
            case "gaussian" -> GAUSSIAN;
            case "router" -> new Router(threshold);
            case "predictor" -> PREDICTOR;
            case "calibrated" -> CALIBRATED;
            default -> throw new ModException("routing: unknown rule \"" + name + "\"; one of " + String.join(", ", NAMES));
        };
    }

    /** The rule of that name or settings name, with the router rule's default threshold (for settings files). */
    @JsonCreator
    static RoutingRule named(String name) {
        return named(name, 0.5);
    }

    /** The rule generation uses when a run names none: calibrated if the model was calibrated, else predictor if it has one, else router. */
    static RoutingRule defaultFor(Model model) {
        if (model.calibration() != null) {
            return CALIBRATED;
        }
        return model.predictorDim() > 0 ? PREDICTOR : ROUTER;
    }
}
