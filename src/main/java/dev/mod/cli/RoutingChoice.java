package dev.mod.cli;

import dev.mod.model.Model;
import dev.mod.plan.CausalRouting;

/** What --routing takes: top-k over the sequence (the training-time rule) or one of the causal rules. */
enum RoutingChoice {
    topk, router, predictor, calibrated;

    /** The causal rule this names (not for topk); threshold is the router rule's sigmoid threshold. */
    CausalRouting causal(Model model, double threshold) {
        CausalRouting routing = switch (this) {
            case topk -> throw new IllegalStateException("top-k is not a causal rule");
            case router -> new CausalRouting(CausalRouting.Rule.ROUTER, threshold);
            case predictor -> CausalRouting.of(CausalRouting.Rule.PREDICTOR);
            case calibrated -> CausalRouting.of(CausalRouting.Rule.CALIBRATED);
        };
        routing.checkAgainst(model);
        return routing;
    }
}
