package dev.mod.cli;

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

    @Option(names = "--threshold", defaultValue = "0.5", description = "The router rule routes when sigmoid(r) > this (default: ${DEFAULT-VALUE}).")
    double threshold;

    /** The rule asked for, or the given default; checked against the model. */
    RoutingRule rule(Model model, RoutingRule otherwise) {
        RoutingRule rule = name == null ? otherwise : RoutingRule.named(name, threshold);
        rule.checkAgainst(model);
        return rule;
    }

    /** The causal rule asked for, or the given default: what generation runs with. */
    RoutingRule causalRule(Model model, RoutingRule otherwise) {
        RoutingRule rule = name == null ? otherwise : RoutingRule.named(name, threshold);
        rule.checkCausal(model);
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
