package dev.mod.cli;

import dev.mod.OclgrindLogCheck;
import dev.mod.TestModels;
import dev.mod.io.ModelFile;
import dev.mod.io.SafetensorsFile;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.plan.ForwardPlan;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.nio.file.Path;
import java.util.StringJoiner;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * `mod forward --backend tornado` against the reference backend on the configs of the cpu parity tests:
 * the same selected tokens and logits within 1e-4 relative. Runs in builds with the tornado profile on
 * TornadoVM's runtime (a TornadoVM SDK installed, TORNADOVM_HOME set); skipped with the reason elsewhere.
 */
@ExtendWith(OclgrindLogCheck.class)
class TornadoParityTest extends ConsoleTest {
    private static boolean available;

    @TempDir
    Path dir;

    @BeforeAll
    static void checkTornado() {
        try {
            Class.forName("dev.mod.tornado.TornadoForwardPlan");
            Class.forName("uk.ac.manchester.tornado.api.TaskGraph");
            available = true;
        } catch (ClassNotFoundException | NoClassDefFoundError e) {
            System.out.println("TornadoParityTest skipped: no TornadoVM SDK in this build (set TORNADOVM_HOME to an SDK, "
                    + "which turns on the tornado profile)");
        }
    }

    @Test
    void aTaskPlacedOnAMissingDeviceFailsWithOneLine() {
        assumeTrue(available, "no TornadoVM SDK in this build");
        Model model = ModelInit.random(TestModels.config(1, 2, 0.5, java.util.List.of(), dev.mod.model.RouterWeighting.RAW), 5);
        Path modelFile = dir.resolve("model.safetensors");
        ModelFile.save(model, modelFile);
        Path out = dir.resolve("out.safetensors");
        System.setProperty("layer0.attention.qkv.device", "0:99");
        try {
            assertEquals(1, mod("forward", "--backend", "tornado", "--model", modelFile.toString(), "--tokens", "1,2,3",
                    "--out", out.toString()));
        } finally {
            System.clearProperty("layer0.attention.qkv.device");
        }
        String message = stderr().strip();
        assertTrue(message.startsWith("mod: error: tornado-config: layer0.attention.qkv.device=0:99: no such TornadoVM device") && !message.contains("\n") && !message.contains("\u001B"), message);
        assertTrue(message.contains("99"), message);
        assertTrue(!java.nio.file.Files.exists(out), "no output written");
    }

    /** tornado-config settings the plan cannot honour: each one line naming the property, exit 1, nothing written. */
    @ParameterizedTest(name = "{0}={1}")
    @org.junit.jupiter.params.provider.CsvSource({
            "layer0.mlp.w13.local.workgroup.size, 16, 'tornado-config: layer0.mlp.w13.local.workgroup.size: layer0.mlp.w13 sets its own work-groups, which TornadoVM cannot override; use mod.tornado.layer0.mlp.w13.local=N'",
            "layer0.attention.q.device, 0:0, 'tornado-config: layer0.attention.q.device: graph layer0 has no task attention.q'",
            "layer0.attention.qkv.device, x, 'tornado-config: layer0.attention.qkv.device=x: a TornadoVM device is B:D'",
            "mod.tornado.device, 1:0, 'tornado-config: mod.tornado.device=1:0: no such TornadoVM device'",
            "mod.tornado.layer0.mlp.w2.matmul, fast, 'tornado-config: mod.tornado.layer0.mlp.w2.matmul=fast: the layouts are rows, tiled and vector'",
            "mod.tornado.layer0.mlp.w9.local, 32, 'tornado-config: mod.tornado.layer0.mlp.w9: no matrix-product task layer0.mlp.w9'",
            "mod.tornado.layer0.mlp.w2.locl, 32, 'tornado-config: unknown setting mod.tornado.layer0.mlp.w2.locl'",
            "layer9.attention.qkv.device, 0:0, 'tornado-config: layer9.attention.qkv.device: this plan has no graph layer9'",
            "s0.t0.local.workgroup.size, 0, 'tornado-config: s0.t0.local.workgroup.size=0: work-group sizes are one to three positive integers separated by commas'",
            "s0.t0.global.workgroup.size, abc, 'tornado-config: s0.t0.global.workgroup.size=abc: work-group sizes are one to three positive integers'"})
    void aSettingThePlanCannotHonourFailsWithOneLine(String property, String value, String expected) {
        assumeTrue(available, "no TornadoVM SDK in this build");
        Model model = ModelInit.random(TestModels.config(1, 2, 0.5, java.util.List.of(), dev.mod.model.RouterWeighting.RAW), 5);
        Path modelFile = dir.resolve("model.safetensors");
        ModelFile.save(model, modelFile);
        Path out = dir.resolve("out.safetensors");
        System.setProperty(property, value);
        try {
            assertEquals(1, mod("forward", "--backend", "tornado", "--model", modelFile.toString(), "--tokens", "1,2,3",
                    "--out", out.toString()));
        } finally {
            System.clearProperty(property);
        }
        String message = stderr().strip();
        assertTrue(message.startsWith("mod: error: " + expected) && !message.contains("\n"), message);
        assertTrue(!java.nio.file.Files.exists(out), "no output written");
    }

    /**
     * Generation with experts on the device: refused before calibration as on the cpu, then, with calibrated expert
     * thresholds, the same greedy text as the cpu backend.
     */
    @Test
    void generationWithExpertsGivesTheCpuBackendsText() throws java.io.IOException {
        assumeTrue(available, "no TornadoVM SDK in this build");
        Model model = ModelInit.random(dev.mod.model.Presets.get("small").withExperts(new dev.mod.model.Experts(2, 1, 0.5, 16)), 5);
        Path modelFile = dir.resolve("experts.safetensors");
        ModelFile.save(model, modelFile);
        String[] generate = {"generate", "--model", "", "--prompt", "public static", "--max-tokens", "12", "--temperature", "0",
                "--backend", ""};
        generate[2] = modelFile.toString();
        generate[10] = "tornado";
        assertEquals(1, mod(generate));
        assertTrue(stderr().contains("run mod calibrate on it first"), stderr());
        Path text = java.nio.file.Files.writeString(dir.resolve("t.txt"), "public static void main(String[] args) { }\n".repeat(10));
        Path calibrated = dir.resolve("calibrated.safetensors");
        assertEquals(0, mod("calibrate", "--model", modelFile.toString(), "--text", text.toString(), "--seq", "16", "--out",
                calibrated.toString()), stderr());
        generate[2] = calibrated.toString();
        assertEquals(0, mod(generate), stderr());
        String onDevice = stdout();
        generate[10] = "cpu";
        assertEquals(0, mod(generate), stderr());
        assertEquals(stdout(), onDevice);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource({"dev.mod.cpu.CpuParityTest#configs", "dev.mod.cpu.CpuParityTest#withExperts"})
    void tornadoMatchesReference(String name, ModelConfig config, int batch, int seqLen) {
        assumeTrue(available, "no TornadoVM SDK in this build");
        checkAgainstReference(name, config, batch, seqLen);
    }

    /** The GPU layout of the matrix products (work-group tiles in local memory), run here on the CPU device. */
    @ParameterizedTest(name = "{0}")
    @MethodSource({"dev.mod.cpu.CpuParityTest#configs", "dev.mod.cpu.CpuParityTest#withExperts"})
    void tiledProductsMatchReference(String name, ModelConfig config, int batch, int seqLen) {
        checkWithLayout("tiled", name, config, batch, seqLen);
    }

    /** The matrix-vector layout (GPUs' default for at most four rows), on configs whose products all have that few. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("fewRows")
    void vectorProductsMatchReference(String name, ModelConfig config, int batch, int seqLen) {
        checkWithLayout("vector", name, config, batch, seqLen);
    }

    static java.util.stream.Stream<org.junit.jupiter.params.provider.Arguments> fewRows() {
        return java.util.stream.Stream.of(
                org.junit.jupiter.params.provider.Arguments.of("one token in each of 2 sequences, routed and dense",
                        TestModels.config(2, 2, 1.0, java.util.List.of(1), dev.mod.model.RouterWeighting.SIGMOID), 2, 1),
                org.junit.jupiter.params.provider.Arguments.of("4 tokens, GQA, a routed layer of 2",
                        new ModelConfig(70, 96, 2, 4, 2, 150, 1e-5, 10000, 16, 0.5, java.util.List.of(1),
                                dev.mod.model.RouterWeighting.RAW), 1, 4));
    }

    private void checkWithLayout(String layout, String name, ModelConfig config, int batch, int seqLen) {
        assumeTrue(available, "no TornadoVM SDK in this build");
        System.setProperty("mod.tornado.matmul", layout);
        try {
            checkAgainstReference(name, config, batch, seqLen);
        } finally {
            System.clearProperty("mod.tornado.matmul");
        }
    }

    private void checkAgainstReference(String name, ModelConfig config, int batch, int seqLen) {
        Model model = ModelInit.random(config, name.hashCode());
        Path modelFile = dir.resolve("model.safetensors");
        ModelFile.save(model, modelFile);
        int[][] tokens = TestModels.tokens(batch, seqLen, config.vocabSize(), 3);
        StringJoiner rows = new StringJoiner(";");
        for (int[] row : tokens) {
            StringJoiner ids = new StringJoiner(",");
            for (int id : row) {
                ids.add(Integer.toString(id));
            }
            rows.add(ids.toString());
        }
        Path out = dir.resolve("out.safetensors");
        assertEquals(0, mod("forward", "--backend", "tornado", "--model", modelFile.toString(),
                "--tokens", rows.toString(), "--out", out.toString()), stderr());
        ForwardPlan reference = TestModels.run(model, tokens);
        try (SafetensorsFile result = SafetensorsFile.open(out)) {
            for (int layer : reference.routedLayers()) {
                assertArrayEquals(reference.selected(layer), result.tensor("layers." + layer + ".selected").toIntArray(),
                        "layer " + layer + " selection");
            }
            for (int layer = 0; config.hasExperts() && layer < config.nLayers(); layer++) {
                dev.mod.plan.ExpertChoice choice = reference.expertChoice(layer);
                for (int e = 0; e < config.experts().count(); e++) {
                    String p = "layers." + layer + ".experts." + e + ".";
                    assertArrayEquals(choice.selected()[e], result.tensor(p + "selected").toIntArray(), p + "selected");
                    float[] probability = result.tensor(p + "probability").toFloatArray();
                    for (int r = 0; r < probability.length; r++) {
                        assertEquals(choice.probabilities()[e][r], probability[r], 1e-5, p + "probability of row " + r);
                    }
                }
            }
            float[] logits = result.tensor("logits").toFloatArray();
            double largest = 0;
            double worst = 0;
            for (int i = 0; i < logits.length; i++) {
                largest = Math.max(largest, Math.abs(reference.logits()[i]));
                worst = Math.max(worst, Math.abs(logits[i] - reference.logits()[i]));
            }
            assertTrue(worst / largest < 1e-4, "relative error " + worst / largest);
        }
    }
}
