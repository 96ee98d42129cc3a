package dev.mod.cpu;

import dev.mod.TestModels;
import dev.mod.model.DType;
import dev.mod.model.Experts;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.RouterWeighting;
import dev.mod.plan.ForwardPlan;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The cpu backend against the reference: the same selected tokens and logits within 1e-4 relative. */
class CpuParityTest {
    private static final CpuKernels CPU = new CpuKernels(2);

    @AfterAll
    static void closePool() {
        CPU.close();
    }

    static Stream<Arguments> configs() {
        return Stream.of(
                // name, config, batch, seqLen
                Arguments.of("GQA raw, T not a multiple of the vector width",
                        TestModels.config(3, 2, 0.25, List.of(1, 2), RouterWeighting.RAW), 2, 37),
                Arguments.of("sigmoid, batch 3, T = 13",
                        TestModels.config(2, 4, 0.5, List.of(0, 1), RouterWeighting.SIGMOID), 3, 13),
                Arguments.of("dense only",
                        TestModels.config(2, 1, 1.0, List.of(), RouterWeighting.RAW), 2, 20),
                Arguments.of("capacity 1, one token per sequence",
                        TestModels.config(2, 2, 1.0, List.of(1), RouterWeighting.SIGMOID), 2, 1),
                Arguments.of("head dim 64, GQA, 12.5%, T = 64",
                        new ModelConfig(300, 256, 4, 4, 2, 520, 1e-5, 10000, 128, 0.125,
                                ModelConfig.everyOtherLayer(4), RouterWeighting.RAW), 2, 64),
                Arguments.of("head dim 48, widths off the panel, T = 71",
                        new ModelConfig(97, 96, 2, 2, 1, 150, 1e-6, 500000, 128, 0.3,
                                List.of(0), RouterWeighting.SIGMOID), 1, 71));
    }

    /** Models with experts: MoE, staged and integrated MoDE. */
    static Stream<Arguments> withExperts() {
        return Stream.of(
                Arguments.of("MoE, 4 experts at 30%, T = 23",
                        TestModels.config(2, 2, 1.0, List.of(), RouterWeighting.RAW).withExperts(new Experts(4, 0, 0.3, 40)), 2, 23),
                Arguments.of("staged MoDE, 3 experts at 40% of the routed rows",
                        TestModels.config(3, 2, 0.5, List.of(1, 2), RouterWeighting.SIGMOID).withExperts(new Experts(3, 0, 0.4, 24)), 3, 17),
                Arguments.of("integrated MoDE, 2 experts and 2 no-ops at 25%",
                        TestModels.config(2, 1, 1.0, List.of(), RouterWeighting.RAW).withExperts(new Experts(2, 2, 0.25, 32)), 2, 30));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource({"configs", "withExperts"})
    void cpuMatchesReference(String name, ModelConfig config, int batch, int seqLen) {
        check(ModelInit.random(config, name.hashCode()), batch, seqLen);
    }

    /** Matrices in BF16 and F16: the cpu backend keeps them in 16 bits, the reference reads the same rounded values. */
    @ParameterizedTest(name = "{0}")
    @MethodSource({"configs", "withExperts"})
    void cpuMatchesReferenceOnSixteenBitWeights(String name, ModelConfig config, int batch, int seqLen) {
        Model model = ModelInit.random(config, name.hashCode());
        check(model.withMatrixType(DType.BF16), batch, seqLen);
        check(model.withMatrixType(DType.F16), batch, seqLen);
    }

    private static void check(Model model, int batch, int seqLen) {
        ModelConfig config = model.config();
        int[][] tokens = TestModels.tokens(batch, seqLen, config.vocabSize(), 3);
        ForwardPlan reference = TestModels.run(model, tokens);
        ForwardPlan cpu = new ForwardPlan(model, CPU, batch, seqLen);
        cpu.run(tokens);
        for (int layer : reference.routedLayers()) {
            assertArrayEquals(reference.selected(layer), cpu.selected(layer), "layer " + layer + " selection");
        }
        for (int layer = 0; config.hasExperts() && layer < config.nLayers(); layer++) {
            for (int e = 0; e < config.experts().count(); e++) {
                assertArrayEquals(reference.expertChoice(layer).selected()[e], cpu.expertChoice(layer).selected()[e],
                        "layer " + layer + ", expert " + e + " selection");
            }
        }
        assertTrue(relativeError(cpu.logits(), reference.logits()) < 1e-4,
                "relative error " + relativeError(cpu.logits(), reference.logits()));
    }

    @Test
    void resultsDoNotDependOnTheNumberOfThreads() {
        ModelConfig config = new ModelConfig(300, 256, 4, 4, 2, 520, 1e-5, 10000, 256, 0.25,
                ModelConfig.everyOtherLayer(4), RouterWeighting.RAW);
        Model model = ModelInit.random(config, 5);
        int[][] tokens = TestModels.tokens(3, 150, 300, 4);
        float[] first = null;
        for (int threads : new int[] {1, 2, 3, 5}) {
            try (CpuKernels kernels = new CpuKernels(threads)) {
                ForwardPlan plan = new ForwardPlan(model, kernels, 3, 150);
                plan.run(tokens);
                if (first == null) {
                    first = plan.logits().clone();
                } else {
                    assertArrayEquals(first, plan.logits(), threads + " threads: the same bits");
                }
            }
        }
    }

    @Test
    void aPlanGivesTheSameAnswerOnEveryRun() {
        ModelConfig config = TestModels.config(2, 2, 0.25, List.of(1), RouterWeighting.RAW);
        Model model = ModelInit.random(config, 6);
        ForwardPlan plan = new ForwardPlan(model, CPU, 2, 30);
        int[][] a = TestModels.tokens(2, 30, 50, 1);
        int[][] b = TestModels.tokens(2, 30, 50, 2);
        plan.run(a);
        float[] first = plan.logits().clone();
        plan.run(b);
        plan.run(a);
        assertArrayEquals(first, plan.logits());
    }

    /**
     * A NaN in the last position's embedding stays there: every earlier position's logits are finite and those of
     * the same run without the last token, on the cpu and reference backends (masked keys are skipped, never
     * added as 0 x NaN). Dense, so that top-k routing (which sees every token by design) plays no part; T = 23
     * puts the last token inside a block of query rows, past a block boundary.
     */
    @Test
    void aNonFiniteValueAtALaterPositionNeverReachesAnEarlierOne() {
        ModelConfig config = new ModelConfig(40, 64, 2, 4, 2, 96, 1e-5, 10000, 64, 1.0, List.of(), RouterWeighting.RAW);
        Model model = ModelInit.random(config, 8);
        int poisoned = 39;
        for (int i = 0; i < config.dim(); i++) {
            model.embeddings().data().setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, (long) poisoned * config.dim() + i, Float.NaN);
        }
        int seqLen = 23;
        int[][] tokens = TestModels.tokens(1, seqLen, poisoned, 3);
        int[][] prefix = {java.util.Arrays.copyOf(tokens[0], seqLen - 1)};
        for (int t : new int[] {seqLen - 1, seqLen - 2, seqLen - 3}) {
            tokens[0][t] = poisoned;
            prefix[0] = java.util.Arrays.copyOf(tokens[0], t);
            for (dev.mod.plan.Kernels kernels : new dev.mod.plan.Kernels[] {CPU, new dev.mod.reference.ReferenceKernels()}) {
                ForwardPlan whole = new ForwardPlan(model, kernels, 1, seqLen);
                whole.run(tokens);
                ForwardPlan before = new ForwardPlan(model, kernels, 1, t);
                before.run(prefix);
                float[] earlier = java.util.Arrays.copyOf(whole.logits(), t * config.vocabSize());
                for (float logit : earlier) {
                    assertTrue(Float.isFinite(logit), kernels.name() + ": position before " + t + " not finite");
                }
                assertTrue(relativeError(earlier, before.logits()) < 1e-5, kernels.name() + ": earlier positions changed");
            }
        }
    }

    static double relativeError(float[] actual, float[] expected) {
        double largest = 0;
        double worst = 0;
        for (int i = 0; i < expected.length; i++) {
            largest = Math.max(largest, Math.abs(expected[i]));
            worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
        }
        return worst / largest;
    }
}
