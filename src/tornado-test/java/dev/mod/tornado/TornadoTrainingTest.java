package dev.mod.tornado;

import dev.mod.ModException;
import dev.mod.OclgrindLogCheck;
import dev.mod.TestModels;
import dev.mod.backend.Backends;
import dev.mod.model.Experts;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.RouterWeighting;
import dev.mod.plan.RoutingRule;
import dev.mod.train.AdamW;
import dev.mod.train.Parameters;
import dev.mod.train.TrainSettings;
import dev.mod.train.TrainState;
import dev.mod.train.TrainingPass;
import dev.mod.train.TrainingPlan;
import com.fasterxml.jackson.databind.JsonNode;
import dev.mod.data.TextData;
import dev.mod.train.Checkpoint;
import dev.mod.train.RunFolder;
import dev.mod.train.Trainer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

/**
 * Training on the tornado backend against the cpu backend, from one initialisation: 20 steps of the same batches, for a
 * dense model, MoD with raw and sigmoid router weighting, with the causal predictor, with the stochastic control and
 * with grouped keys, and with the GPUs' tiled products forced on the CPU device. The kernels sum in other orders than the cpu's, so the runs drift apart by float rounding: the
 * first step's top-k selections are the same, the losses stay within 1e-4 relative at every step and the weights
 * after 20 steps within 1e-3 relative (of each tensor's largest value). On the Oclgrind simulator, two of the runs for
 * 3 steps (every kernel, under its race and bounds checks).
 */
@ExtendWith(OclgrindLogCheck.class)
class TornadoTrainingTest {
    private static final int BATCH = 2;
    private static final int SEQ = 16;
    /** On the Oclgrind simulator, some hundred times slower, the runs that cover every kernel, for 3 steps. */
    private static final int STEPS = OclgrindLogCheck.onSimulator() ? 3 : 20;

    static Stream<Arguments> runs() {
        return Stream.of(
                Arguments.of("dense", TestModels.config(2, 4, 1.0, List.of(), RouterWeighting.SIGMOID), RoutingRule.TOP_K, 0, "rows"),
                Arguments.of("mod-raw", TestModels.config(2, 4, 0.25, List.of(1), RouterWeighting.RAW), RoutingRule.TOP_K, 0, "rows"),
                Arguments.of("mod-sigmoid-predictor", TestModels.config(2, 4, 0.25, List.of(1), RouterWeighting.SIGMOID), RoutingRule.TOP_K, 8,
                        "rows"),
                Arguments.of("stochastic-gqa", TestModels.config(2, 2, 0.375, List.of(1), RouterWeighting.SIGMOID), RoutingRule.STOCHASTIC, 0,
                        "rows"),
                Arguments.of("gaussian-raw", TestModels.config(2, 2, 0.375, List.of(1), RouterWeighting.RAW), RoutingRule.GAUSSIAN, 0,
                        "rows"),
                Arguments.of("mod-sigmoid-predictor-tiled", TestModels.config(2, 4, 0.25, List.of(1), RouterWeighting.SIGMOID),
                        RoutingRule.TOP_K, 8, "tiled"),
                Arguments.of("routers-only", TestModels.config(2, 4, 0.25, List.of(1), RouterWeighting.RAW), RoutingRule.TOP_K, 8, "rows"),
                Arguments.of("staged-mode", TestModels.config(2, 4, 0.5, List.of(1), RouterWeighting.RAW).withExperts(new Experts(3, 1, 0.4, 16)),
                        RoutingRule.TOP_K, 0, "rows"))
                .filter(run -> !OclgrindLogCheck.onSimulator()
                        || List.of("stochastic-gqa", "gaussian-raw", "mod-sigmoid-predictor-tiled", "staged-mode").contains(run.get()[0]));
    }

    static TrainSettings settings(ModelConfig c, RoutingRule routing, int predictorDim) {
        return new TrainSettings("test", c.toJsonTree(), predictorDim, routing, 1, "random", 1 << 20, STEPS, BATCH, SEQ, 3e-3, 5,
                0.1, 0.1, 1.0, 0.01, 1.0, 1000, 2, 1000);
    }

    /** The run's settings; "routers-only" trains only the routers and predictors of a model it starts from. */
    static TrainSettings settings(String name, ModelConfig c, RoutingRule routing, int predictorDim) {
        TrainSettings s = settings(c, routing, predictorDim);
        if (!name.equals("routers-only")) {
            return s;
        }
        return new TrainSettings(s.model(), s.modelConfig(), s.predictorDim(), s.routing(), s.seed(), s.data(), s.maxDataBytes(),
                s.steps(), s.batch(), s.seqLen(), s.lr(), s.warmup(), s.minLrRatio(), s.weightDecay(), s.clip(), s.auxRouter(),
                s.auxPredictor(), s.evalEvery(), s.evalBatches(), s.checkpointEvery(), new TrainSettings.InitFrom("start.safetensors", "", "routers", null));
    }

    static TrainState fresh(TrainSettings s) {
        Parameters p = Parameters.of(ModelInit.random(s.config(), 7, s.predictorDim()));
        return new TrainState(p, new AdamW(p, s.effectiveWeightDecay()));
    }

    // asserts |actual - expected| <= tolerance * |expected|; returns the relative difference
    private static double closeRelative(double expected, double actual, double tolerance, String what) {
        double difference = Math.abs(expected - actual);
        double relative = difference == 0 ? 0 : difference / Math.abs(expected);
        assertTrue(relative <= tolerance, what + ": cpu " + expected + ", tornado " + actual);
        return relative;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("runs")
    void stepsFollowTheCpuBackend(String name, ModelConfig c, RoutingRule routing, int predictorDim, String products) {
        TrainSettings s = settings(name, c, routing, predictorDim);
        TrainingPass[] opened = new TrainingPass[1];
        TornadoTrainingKernelsTest.withProducts(products, () -> opened[0] = new TornadoBackend.Provider().start().training().open(s, fresh(s)));
        try (TrainingPass cpu = Backends.cpu(2).training().open(s, fresh(s)); TrainingPass device = opened[0]) {
            double worstLoss = 0;
            double worstWeight = 0;
            for (int step = 0; step < STEPS; step++) {
                int[][] input = TestModels.tokens(BATCH, SEQ, c.vocabSize(), 100 + step);
                int[][] target = TestModels.tokens(BATCH, SEQ, c.vocabSize(), 200 + step);
                double want = cpu.forward(input, target, step);
                double got = device.forward(input, target, step);
                worstLoss = Math.max(worstLoss, closeRelative(want, got, 1e-4, name + " loss at step " + (step + 1)));
                closeRelative(cpu.routerLoss(), device.routerLoss(), 1e-4, name + " router loss at step " + (step + 1));
                closeRelative(cpu.predictorLoss(), device.predictorLoss(), 1e-4, name + " predictor loss at step " + (step + 1));
                if (step == 0) {
                    for (int layer : c.routedLayers()) {
                        assertArrayEquals(cpu.selected(layer), device.selected(layer), name + " layer " + layer + ": the first step's top-k");
                    }
                }
                cpu.backward();
                device.backward();
                closeRelative(cpu.clipGradients(s.clip()), device.clipGradients(s.clip()), 1e-3, name + " gradient norm at step " + (step + 1));
                double lr = AdamW.learningRate(step, s.lr(), s.warmup(), s.steps(), s.minLrRatio());
                cpu.update(lr);
                device.update(lr);
            }
            Parameters want = cpu.state().params();
            Parameters got = device.state().params();
            for (String tensor : want.names()) {
                float[] a = want.get(tensor);
                float[] b = got.get(tensor);
                double largest = 0;
                double worst = 0;
                for (int i = 0; i < a.length; i++) {
                    largest = Math.max(largest, Math.abs(a[i]));
                    worst = Math.max(worst, Math.abs(a[i] - b[i]));
                }
                assertTrue(worst <= 1e-3 * largest, name + " " + tensor + " after " + STEPS + " steps: off by " + worst + " of " + largest);
                worstWeight = Math.max(worstWeight, worst / largest);
            }
            if (s.initFrom() != null) {
                Parameters start = fresh(s).params();
                for (String tensor : start.names()) {
                    if (!s.initFrom().trains(tensor)) {
                        assertArrayEquals(start.get(tensor), got.get(tensor), tensor + " is frozen");
                    }
                }
            }
            System.out.printf("%s: tornado against cpu over %d steps: losses within %.1e relative, weights within %.1e%n", name, STEPS,
                    worstLoss, worstWeight);
        }
    }

    @Test
    void theSameRunTwiceOnTheDeviceGivesTheSameBits() {
        assumeFalse(OclgrindLogCheck.onSimulator(), "checked on PoCL (the simulator checks the kernels)");
        TrainSettings s = settings(TestModels.config(2, 2, 0.375, List.of(1), RouterWeighting.SIGMOID), RoutingRule.STOCHASTIC, 8);
        double[][] losses = new double[2][5];
        Parameters[] after = new Parameters[2];
        for (int run = 0; run < 2; run++) {
            try (TrainingPass device = new TornadoBackend.Provider().start().training().open(s, fresh(s))) {
                for (int step = 0; step < 5; step++) {
                    losses[run][step] = device.forward(TestModels.tokens(BATCH, SEQ, 50, 100 + step), TestModels.tokens(BATCH, SEQ, 50, 200 + step), step);
                    device.backward();
                    device.clipGradients(s.clip());
                    device.update(1e-2);
                }
                after[run] = device.state().params();
            }
        }
        assertArrayEquals(losses[0], losses[1], "losses");
        for (String tensor : after[0].names()) {
            assertArrayEquals(after[0].get(tensor), after[1].get(tensor), tensor);
        }
    }

    /** A checkpoint written on one backend resumes on the other and goes on along the run that never stopped. */
    @ParameterizedTest(name = "first on {0}")
    @ValueSource(strings = {"tornado", "cpu"})
    void aCheckpointResumesOnTheOtherBackend(String first, @TempDir Path dir) throws IOException {
        assumeFalse(OclgrindLogCheck.onSimulator(), "checked on PoCL (the simulator checks the kernels)");
        Path text = dir.resolve("text.txt");
        Files.writeString(text, "The quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs. ".repeat(20));
        ModelConfig c = new ModelConfig(260, 16, 2, 4, 2, 24, 1e-5, 10000, 64, 0.25, List.of(1), RouterWeighting.SIGMOID);
        TrainSettings s = new TrainSettings("test", c.toJsonTree(), 8, RoutingRule.TOP_K, 1, text.toString(), 1 << 20, 10, 2, 24, 3e-3, 3,
                0.1, 0.1, 1.0, 0.01, 1.0, 5, 2, 4);
        TrainingPass.Opener cpu = Backends.cpu(2).training();
        TrainingPass.Opener tornado = new TornadoBackend.Provider().start().training();
        Trainer straight = new Trainer(s, TextData.open(s.data(), 24, 1 << 20), dir.resolve("straight"), cpu);
        straight.run(false, p -> { });
        Trainer interrupted = new Trainer(s, TextData.open(s.data(), 24, 1 << 20), dir.resolve("resumed"),
                first.equals("cpu") ? cpu : tornado);
        assertThrows(IllegalStateException.class, () -> interrupted.run(false, p -> {
            if (p.step() == 6) {
                throw new IllegalStateException("killed");
            }
        }));
        Trainer resumed = new Trainer(s, TextData.open(s.data(), 24, 1 << 20), dir.resolve("resumed"), first.equals("cpu") ? tornado : cpu);
        resumed.run(true, p -> { });

        List<JsonNode> a = RunFolder.readLog(straight.folder().logFile()).stream().filter(l -> l.has("loss")).toList();
        List<JsonNode> b = RunFolder.readLog(resumed.folder().logFile()).stream().filter(l -> l.has("loss")).toList();
        assertEquals(10, b.size(), "each step logged once");
        for (int i = 0; i < a.size(); i++) {
            closeRelative(a.get(i).get("loss").asDouble(), b.get(i).get("loss").asDouble(), 1e-4, "loss at step " + (i + 1));
        }
        Checkpoint want = Checkpoint.read(straight.folder().checkpointFile());
        Checkpoint got = Checkpoint.read(resumed.folder().checkpointFile());
        assertEquals(10, got.step());
        for (String tensor : want.params().names()) {
            float[] x = want.params().get(tensor);
            float[] y = got.params().get(tensor);
            for (int i = 0; i < x.length; i++) {
                assertEquals(x[i], y[i], 1e-3 * Math.max(1e-2, Math.abs(x[i])), tensor + "[" + i + "]");
            }
        }
    }

    // one training step on a batch drawn for it
    private static void step(TrainingPass pass, int step, int vocab) {
        pass.forward(TestModels.tokens(BATCH, SEQ, vocab, 100 + step), TestModels.tokens(BATCH, SEQ, vocab, 200 + step), step);
        pass.backward();
        pass.clipGradients(1.0);
        pass.update(1e-3);
    }

    @Test
    void afterTheFirstStepOnlyTheTokensMoveInTheLossesAndNormOutAndNothingIsRecompiled() {
        assumeFalse(OclgrindLogCheck.onSimulator(), "checked on PoCL (the simulator checks the kernels)");
        ModelConfig c = TestModels.config(2, 4, 0.25, List.of(1), RouterWeighting.SIGMOID);
        TrainSettings s = settings(c, RoutingRule.TOP_K, 8);
        TornadoTrainingKernels[] kernels = new TornadoTrainingKernels[1];
        TrainingPass.Opener profiled = TrainingPlan.opener((x, y) -> kernels[0] = new TornadoTrainingKernels(null, BATCH * SEQ, true));
        try (TrainingPass pass = profiled.open(s, fresh(s))) {
            step(pass, 0, c.vocabSize());
            kernels[0].takeProfile();
            long downloaded = kernels[0].downloadedBytes();
            step(pass, 1, c.vocabSize());
            List<GraphProfile> profile = kernels[0].takeProfile();
            assertEquals(List.of("embedding", "layer0.forward", "layer1.forward", "head", "head.backward", "layer1.backward",
                    "layer0.backward", "embedding.backward", "clip", "update"),
                    profile.stream().map(g -> g.graph().replaceAll("\\.[0-9]+$", "")).distinct().toList(), "the sections, some in two graphs");
            // TornadoVM counts each task launch's argument block as bytes in; the step's own inputs: the tokens and targets
            // (as floats), the clipping norm, the learning rate and AdamW's two bias corrections
            long perTaskArguments = 32;
            Map<String, Long> inputs = Map.of("embedding", 2L * BATCH * SEQ * Float.BYTES, "clip", (long) Float.BYTES, "update", 3L * Float.BYTES);
            for (GraphProfile graph : profile) {
                long data = graph.bytesIn() - graph.tasks() * perTaskArguments - inputs.getOrDefault(graph.graph(), 0L);
                assertTrue(data <= 32, graph + ": only the step's inputs (and launch arguments) move in");
                assertEquals(0, graph.bytesOut(), graph + ": nothing moves out on its own");
                assertEquals(0, graph.compileNanos(), graph.graph() + " recompiled");
                assertTrue(graph.kernelNanos() > 0, graph.graph() + " ran no kernel on the device");
            }
            int routed = c.routedLayers().size();
            assertEquals((1 + 2 * routed) * Float.BYTES + 2 * Float.BYTES, kernels[0].downloadedBytes() - downloaded,
                    "out: the losses and the gradient norm");
        }
    }

    @Test
    void aRunTooLargeForTheDeviceIsRefusedBeforeAnythingIsAllocated() {
        // a small model on a batch whose logits alone (1,048,576 rows x 65,536) need 256 GiB
        ModelConfig c = new ModelConfig(65536, 16, 2, 4, 4, 24, 1e-5, 10000, 64, 0.25, List.of(1), RouterWeighting.SIGMOID);
        TrainSettings s = new TrainSettings("test", c.toJsonTree(), 0, RoutingRule.TOP_K, 1, "random", 1 << 20, 1, 16384, 64, 1e-3, 1,
                0.1, 0.1, 1.0, 0.01, 1.0, 1000, 1, 1000);
        ModException e = assertThrows(ModException.class, () -> new TornadoBackend.Provider().start().training().open(s, fresh(s)));
        assertTrue(e.getMessage().matches("the plan needs [0-9.]+ MiB of device memory; .* has [0-9.]+ MiB"), e.getMessage());
    }
}
