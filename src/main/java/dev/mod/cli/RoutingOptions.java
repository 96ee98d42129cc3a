package dev.mod.cli;

import dev.mod.ModException;
import dev.mod.model.Model;
import dev.mod.plan.RoutingRule;
import picocli.CommandLine.Option;

import java.util.Iterator;

/** --routing and --threshold, shared by the commands that run a model under a routing rule (RoutingRule). */
final class RoutingOptions {
    @Option(names = "--routing", paramLabel = "RULE", completionCandidates = Names.class,
            description = "Routing rule: topk (the training-time rule, over the whole sequence), or a causal one, which decides "
                    + "token by token: router, predictor or calibrated (default: the command's).")
    String name;

    @Option(names = "--threshold", description = "With --routing router: it routes when sigmoid(r) > this (default: 0.5).")
    Double threshold;

    /** The rule asked for, or the given default; checked against the model. */
    RoutingRule rule(Model model, RoutingRule otherwise) {
        RoutingRule rule = chosen(otherwise);
        rule.checkAgainst(model);
        return rule;
    }

    /** The causal rule asked for, or the given default: what generation runs with. */
    RoutingRule causalRule(Model model, RoutingRule otherwise) {
        RoutingRule rule = chosen(otherwise);
        rule.checkCausal(model);
        return rule;
    }

    // a threshold applies to the router rule, named or the command's default; given for another rule it would be
    // ignored, so it is refused
    private RoutingRule chosen(RoutingRule otherwise) {
        RoutingRule rule = name != null ? RoutingRule.named(name, threshold == null ? 0.5 : threshold)
                : threshold != null && otherwise instanceof RoutingRule.Router ? RoutingRule.named("router", threshold) : otherwise;
        if (threshold != null && !(rule instanceof RoutingRule.Router)) {
            throw new ModException("--threshold applies to --routing router, not to " + rule.name());
        }
        return rule;
    }

    /** The rules' names, for --help. */
    static final class Names implements Iterable<String> {
        @Override
        public Iterator<String> iterator() {
            return RoutingRule.NAMES.iterator();
        }
    }
}
