package dev.mod.plan;

import dev.mod.ModException;
import dev.mod.model.Model;

import java.util.Locale;

/**
 * A causal routing rule: whether a routed layer processes a token is decided from that token's residual
 * stream alone, so prefill and decode can make the same decision (top-k over the sequence cannot: it
 * depends on later tokens). A processed token gets x + g(r) * f(x), a skipped one passes through.
 *
 * @param rule      which rule decides
 * @param threshold for the router rule: route when sigmoid(r) > threshold, in (0, 1)
 */
public record CausalRouting(Rule rule, double threshold) {
    public enum Rule {
        /** sigmoid(router logit) > threshold (0.5 by default: what the paper's auxiliary BCE loss trains for). */
        ROUTER,
        /** The auxiliary predictor's sigmoid(w2 . silu(w1 . x)) > 0.5, on the layer's input x. */
        PREDICTOR,
        /** Router logit above the layer's calibrated threshold, stored in the model file. */
        CALIBRATED;

        public String cliName() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    public CausalRouting {
        if (rule == null) {
            throw new ModException("routing: no rule given");
        }
        if (!(threshold > 0 && threshold < 1)) {
            throw new ModException("routing: threshold must be in (0, 1), got " + threshold);
        }
    }

    public static CausalRouting of(Rule rule) {
        return new CausalRouting(rule, 0.5);
    }

    /** The rule used when a run names none: calibrated if the model was calibrated, else predictor if it has one, else router. */
    public static CausalRouting defaultFor(Model model) {
        if (model.calibration() != null) {
            return of(Rule.CALIBRATED);
        }
        return of(model.predictorDim() > 0 ? Rule.PREDICTOR : Rule.ROUTER);
    }

    /** Refuses a rule the model cannot run: a predictor rule without predictor tensors, a calibrated one without thresholds. */
    public void checkAgainst(Model model) {
        if (rule == Rule.PREDICTOR && model.predictorDim() == 0) {
            throw new ModException("routing: rule \"predictor\" needs the tensors layers.{i}.predictor.w1.weight and "
                    + "layers.{i}.predictor.w2.weight, which this model does not have");
        }
        if (rule == Rule.CALIBRATED && model.calibration() == null && !model.config().routedLayers().isEmpty()) {
            throw new ModException("routing: rule \"calibrated\" needs thresholds from `mod calibrate`, which this model does not have");
        }
    }

    /**
     * The router logit above which layer routes a token (router and calibrated rules): sigmoid(r) > t is
     * r > ln(t / (1 - t)).
     */
    public double logitThreshold(Model model, int layer) {
        return switch (rule) {
            case ROUTER -> Math.log(threshold / (1 - threshold));
            case CALIBRATED -> model.calibration().threshold(layer);
            case PREDICTOR -> throw new IllegalStateException("the predictor rule has no router threshold");
        };
    }
}
