package dev.mod.tornado;

import dev.mod.TestModels;
import dev.mod.cli.Main;
import dev.mod.io.ModelFile;
import dev.mod.io.SafetensorsFile;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.RouterWeighting;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The tornado backend on Debian's Oclgrind simulator, a GPU-like OpenCL device (32 KB of local memory, work-groups of
 * up to 1024 items) that runs a work-group's items the way a GPU does and checks races and API use: `mod forward` in a
 * JVM of its own on the Oclgrind SDK (OCLGRIND=1 in ../shared/build-tornadovm.sh), against the reference backend, and
 * devices too small for the kernels refused in one line. Skipped, with the reason, where that SDK is not installed
 * ($MOD_OCLGRIND_SDK, else /opt/tornadovm-oclgrind, with its ICD folder at /opt/oclgrind-icd).
 */
class OclgrindTest {
    private static final Path SDK = Path.of(System.getenv().getOrDefault("MOD_OCLGRIND_SDK", "/opt/tornadovm-oclgrind"));
    private static final Path ICD = Path.of(System.getenv().getOrDefault("MOD_OCLGRIND_ICD", "/opt/oclgrind-icd"));
    /** GQA, a routed layer whose k (3 of 13) is not a multiple of any tile, two sequences of 13 (partial tiles). */
    private static final ModelConfig CONFIG = new ModelConfig(70, 48, 3, 4, 2, 72, 1e-5, 10000, 16, 0.3, List.of(1),
            RouterWeighting.SIGMOID);

    @TempDir
    static Path dir;
    private static Path model;
    private static final String TOKENS = tokens();

    @BeforeAll
    static void model() {
        model = dir.resolve("model.safetensors");
        ModelFile.save(ModelInit.random(CONFIG, 7), model);
    }

    private static String tokens() {
        List<String> rows = new ArrayList<>();
        for (int[] row : TestModels.tokens(2, 13, CONFIG.vocabSize(), 5)) {
            rows.add(String.join(",", java.util.Arrays.stream(row).mapToObj(Integer::toString).toList()));
        }
        return String.join(";", rows);
    }

    /** A run's exit status, its standard output, both outputs together, and what the simulator reported (its log). */
    private record Run(int exit, String stdout, String output, String reported) {
        /** Fails when the simulator reported anything: a race, an access out of bounds, barrier divergence, an API error. */
        void checkClean(String what) {
            assertEquals("", reported.strip(), what + ": the simulator reported");
        }
    }

    // `mod args` on the simulator with its race and API checks, in a JVM of its own; extra JVM options and environment
    private static Run onOclgrind(List<String> jvmOptions, Map<String, String> env, String... args) throws IOException, InterruptedException {
        assumeTrue(Files.isRegularFile(SDK.resolve("tornado-argfile")) && Files.isDirectory(ICD),
                "no Oclgrind TornadoVM SDK at " + SDK + " (build it with OCLGRIND=1 ../shared/build-tornadovm.sh)");
        Path root = Path.of("").toAbsolutePath();
        List<String> command = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElseThrow(),
                "@" + SDK.resolve("tornado-argfile"), "@" + root.resolve("scripts/java-options"),
                "@" + root.resolve("scripts/tornado-options"), "--enable-native-access=ALL-UNNAMED"));
        command.addAll(jvmOptions);
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), Main.class.getName()));
        command.addAll(List.of(args));
        Path stderr = Files.createTempFile(dir, "stderr", ".txt");
        Path log = Files.createTempFile(dir, "oclgrind", ".log");
        ProcessBuilder builder = new ProcessBuilder(command).redirectError(stderr.toFile());
        builder.environment().putAll(Map.of("OCL_ICD_VENDORS", ICD.toString(), "TORNADOVM_HOME", SDK.toString(),
                "OCLGRIND_DATA_RACES", "1", "OCLGRIND_CHECK_API", "1", "OCLGRIND_LOG", log.toString()));
        builder.environment().putAll(env);
        Process process = builder.start();
        String stdout = new String(process.getInputStream().readAllBytes());
        int exit = process.waitFor();
        return new Run(exit, stdout, stdout + Files.readString(stderr), Files.readString(log));
    }

    @Test
    void forwardAndCausalPassesMatchTheReferenceWithoutRacesOrApiErrors() throws Exception {
        for (String routing : List.of("topk", "router")) {
            Path expected = dir.resolve("reference-" + routing + ".safetensors");
            assertEquals(0, Main.run("forward", "--backend", "reference", "--model", model.toString(), "--tokens", TOKENS,
                    "--routing", routing, "--out", expected.toString()));
            Path out = dir.resolve("oclgrind-" + routing + ".safetensors");
            Run run = onOclgrind(List.of(), Map.of(), "forward", "--backend", "tornado", "--model", model.toString(),
                    "--tokens", TOKENS, "--routing", routing, "--out", out.toString());
            assertEquals(0, run.exit(), run.output());
            run.checkClean(routing);
            compare(routing, expected, out);
        }
    }

    // the same selections, and logits within 1e-4 of the largest
    private static void compare(String what, Path expected, Path out) throws IOException {
        try (SafetensorsFile want = SafetensorsFile.open(expected); SafetensorsFile got = SafetensorsFile.open(out)) {
            for (int layer : CONFIG.routedLayers()) {
                String name = "layers." + layer + ".selected";
                if (want.tensors().containsKey(name)) {
                    assertArrayEquals(want.tensor(name).toIntArray(), got.tensor(name).toIntArray(), what + " " + name);
                }
            }
            float[] w = want.tensor("logits").toFloatArray();
            float[] g = got.tensor("logits").toFloatArray();
            double largest = 0;
            double worst = 0;
            for (int i = 0; i < w.length; i++) {
                largest = Math.max(largest, Math.abs(w[i]));
                worst = Math.max(worst, Math.abs(w[i] - g[i]));
            }
            assertEquals(0, worst / largest, 1e-4, what + ": relative error of the logits");
        }
    }

    /**
     * Devices at the limits (local memory, items per work-group): every one where the kernels fit gives the reference's
     * answer; with 128 items the tiled products' 256 do not fit and the plan takes the rows layout instead.
     */
    @ParameterizedTest(name = "{0} bytes of local memory, {1} items per work-group")
    @CsvSource({"49152, 1024", "32768, 512", "32768, 256", "32768, 128"})
    void forwardPassesMatchTheReferenceAtTheDevicesLimits(int localBytes, int items) throws Exception {
        Path expected = dir.resolve("reference-" + localBytes + "-" + items + ".safetensors");
        assertEquals(0, Main.run("forward", "--backend", "reference", "--model", model.toString(), "--tokens", TOKENS,
                "--out", expected.toString()));
        Path out = dir.resolve("limits-" + localBytes + "-" + items + ".safetensors");
        Run run = onOclgrind(List.of(), Map.of("OCLGRIND_LOCAL_MEM_SIZE", Integer.toString(localBytes), "OCLGRIND_MAX_WGSIZE",
                Integer.toString(items)), "forward", "--backend", "tornado", "--model", model.toString(), "--tokens", TOKENS,
                "--out", out.toString());
        assertEquals(0, run.exit(), run.output());
        run.checkClean("limits");
        compare("limits", expected, out);
    }

    /** The sampling path: greedy generation, prefill then decode steps with the logits read back each step. */
    @Test
    void greedyGenerationOnTheSimulatorWritesTheReferencesText() throws Exception {
        Path byteModel = dir.resolve("bytes.safetensors");
        ModelFile.save(ModelInit.random(new ModelConfig(258, 48, 2, 4, 2, 72, 1e-5, 10000, 32, 0.5, List.of(1),
                RouterWeighting.SIGMOID), 3), byteModel);
        String[] args = {"generate", "--model", byteModel.toString(), "--prompt", "Mixture", "--max-tokens", "8",
                "--temperature", "0", "--backend"};
        Run reference = onOclgrind(List.of(), Map.of(), concat(args, "reference"));
        Run simulated = onOclgrind(List.of(), Map.of(), concat(args, "tornado"));
        assertEquals(0, reference.exit(), reference.output());
        assertEquals(0, simulated.exit(), simulated.output());
        simulated.checkClean("generate");
        assertFalse(reference.stdout().isBlank(), reference.output());
        assertEquals(reference.stdout(), simulated.stdout());
    }

    private static String[] concat(String[] args, String last) {
        String[] all = java.util.Arrays.copyOf(args, args.length + 1);
        all[args.length] = last;
        return all;
    }

    @Test
    void aWorkGroupSizeTheDeviceCannotTakeIsRefusedBeforeAnythingRuns() throws Exception {
        // Launched, TornadoVM would have run this product with a work-group size of the driver's choosing.
        Path out = dir.resolve("refused.safetensors");
        Run run = onOclgrind(List.of("-Dmod.tornado.layer0.attention.qkv.matmul=rows", "-Dmod.tornado.layer0.attention.qkv.local=128"),
                Map.of("OCLGRIND_MAX_WGSIZE", "64"), "forward", "--backend", "tornado", "--model", model.toString(),
                "--tokens", TOKENS, "--out", out.toString());
        assertEquals(1, run.exit(), run.output());
        List<String> errors = run.output().lines().filter(l -> l.startsWith("mod: error:")).toList();
        assertEquals(List.of("mod: error: tornado-config: mod.tornado.layer0.attention.qkv.local=128: Oclgrind Simulator takes "
                + "work-groups of at most 64 items"), errors, run.output());
        assertFalse(Files.exists(out), "a refused run wrote its output");
    }

    @Test
    void aDeviceWithoutTheKernelsLocalMemoryOrWorkGroupsIsRefusedBeforeAnythingRuns() throws Exception {
        Run small = onOclgrind(List.of(), Map.of("OCLGRIND_LOCAL_MEM_SIZE", "16384"), "forward", "--backend", "tornado",
                "--model", model.toString(), "--tokens", TOKENS, "--out", dir.resolve("small.safetensors").toString());
        assertEquals(1, small.exit(), small.output());
        assertTrue(small.output().contains("mod: error: the attention kernel needs 16392 bytes of local memory; Oclgrind Simulator has 16384"),
                small.output());
        Run narrow = onOclgrind(List.of(), Map.of("OCLGRIND_MAX_WGSIZE", "16"), "forward", "--backend", "tornado",
                "--model", model.toString(), "--tokens", TOKENS, "--out", dir.resolve("narrow.safetensors").toString());
        assertEquals(1, narrow.exit(), narrow.output());
        assertTrue(narrow.output().contains("mod: error: the attention kernel runs work-groups of 32 items (32 x 1); Oclgrind Simulator takes at most 16"),
                narrow.output());
    }
}
