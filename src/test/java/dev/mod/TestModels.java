package dev.mod;

import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.RouterWeighting;
import dev.mod.plan.CausalPlan;
import dev.mod.plan.RoutingRule;
import dev.mod.plan.ForwardPlan;
import dev.mod.reference.ReferenceKernels;

import java.util.List;
import java.util.SplittableRandom;

/** Small configs and helpers shared by the tests. */
public final class TestModels {
    private TestModels() {
    }

    /** vocab 50, dim 16, 4 heads of 4, max_seq_len 64; layers, kv heads and routing as given. */
    public static ModelConfig config(int layers, int kvHeads, double capacity, List<Integer> routed, RouterWeighting g) {
        return new ModelConfig(50, 16, layers, 4, kvHeads, 24, 1e-5, 10000, 64, capacity, routed, g);
    }

    public static Model model(ModelConfig config, long seed) {
        return ModelInit.random(config, seed);
    }

    public static int[][] tokens(int batch, int seqLen, int vocab, long seed) {
        SplittableRandom random = new SplittableRandom(seed);
        int[][] t = new int[batch][seqLen];
        for (int[] row : t) {
            for (int i = 0; i < seqLen; i++) {
                row[i] = random.nextInt(vocab);
            }
        }
        return t;
    }

    /**
     * A 4-layer model for a causal rule ("router", "predictor": with a predictor of 8, "calibrated": with thresholds
     * set on the reference kernels over other tokens of the seed).
     */
    public static Model causalModel(String rule, RouterWeighting g, int kvHeads, List<Integer> routed, long seed) {
        ModelConfig c = config(4, kvHeads, 0.25, routed, g);
        Model m = ModelInit.random(c, seed, rule.equals("predictor") ? 8 : 0);
        if (rule.equals("calibrated")) {
            m = m.withCalibration(CausalPlan.calibrate(m, new ReferenceKernels(), tokens(2, 32, c.vocabSize(), seed + 1)));
        }
        return m;
    }

    /** The causal rule of that name, at the default threshold. */
    public static RoutingRule routing(String rule) {
        return RoutingRule.named(rule);
    }

    /** A reference plan, run once on the tokens. */
    public static ForwardPlan run(Model model, int[][] tokens) {
        ForwardPlan plan = new ForwardPlan(model, new ReferenceKernels(), tokens.length, tokens[0].length);
        plan.run(tokens);
        return plan;
    }
}
