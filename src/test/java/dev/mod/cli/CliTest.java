package dev.mod.cli;

import dev.mod.TestModels;
import dev.mod.io.ModelFile;
import dev.mod.io.SafetensorsFile;
import dev.mod.model.DType;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.Presets;
import dev.mod.model.RouterWeighting;
import dev.mod.plan.ForwardPlan;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class CliTest extends ConsoleTest {
    @TempDir
    Path dir;

    private Path tinyModel() {
        Path model = dir.resolve("tiny.safetensors");
        assertEquals(0, mod("init", "--preset", "tiny", "--seed", "3", "--out", model.toString()), stderr());
        return model;
    }

    @Test
    void initIsReproducibleFromTheSeed() throws IOException {
        Path a = tinyModel();
        Path b = dir.resolve("again.safetensors");
        assertEquals(0, mod("init", "--preset", "tiny", "--seed", "3", "--out", b.toString()));
        assertArrayEquals(Files.readAllBytes(a), Files.readAllBytes(b));
        Path c = dir.resolve("other.safetensors");
        assertEquals(0, mod("init", "--preset", "tiny", "--seed", "4", "--out", c.toString()));
        assertFalse(Arrays.equals(Files.readAllBytes(a), Files.readAllBytes(c)));
    }

    @Test
    void initFromAConfigFileWithAByteOrderMark() throws IOException {
        ModelConfig config = TestModels.config(3, 2, 0.5, List.of(0, 2), RouterWeighting.SIGMOID);
        Path json = Files.writeString(dir.resolve("c.json"), "\uFEFF" + config.toJson());
        Path model = dir.resolve("c.safetensors");
        assertEquals(0, mod("init", "--config", json.toString(), "--out", model.toString()), stderr());
        try (Model m = ModelFile.load(model)) {
            assertEquals(config, m.config());
        }
    }

    @Test
    void initWritesSixteenBitMatricesThatAreWrittenAgainAsTheyAre() throws IOException {
        Path f32 = tinyModel();
        for (String type : new String[] {"bf16", "f16"}) {
            Path model = dir.resolve(type + ".safetensors");
            assertEquals(0, mod("init", "--preset", "tiny", "--seed", "3", "--dtype", type, "--out", model.toString()), stderr());
            assertTrue(Files.size(model) < 0.6 * Files.size(f32), "matrices in half the bytes");
            DType expected = DType.valueOf(type.toUpperCase(java.util.Locale.ROOT));
            try (Model m = ModelFile.load(model); Model full = ModelFile.load(f32)) {
                assertEquals(expected, m.tensor("layers.0.attention.wq.weight").dtype());
                assertEquals(expected, m.embeddings().dtype());
                assertEquals(DType.F32, m.tensor("layers.0.attention_norm.weight").dtype(), "norms stay F32");
                assertEquals(DType.F32, m.tensor("layers.1.router.weight").dtype(), "routers stay F32");
                assertArrayEquals(full.embeddings().as(expected).toFloatArray(), m.embeddings().toFloatArray(),
                        "the F32 model's weights, rounded");
                assertArrayEquals(full.tensor("layers.1.feed_forward.w2.weight").as(expected).toFloatArray(),
                        m.tensor("layers.1.feed_forward.w2.weight").toFloatArray());
            }
            // a model written again (as calibrate writes its output) keeps the types it was stored in
            Path again = dir.resolve(type + "-again.safetensors");
            try (Model m = ModelFile.load(model)) {
                ModelFile.save(m, again);
            }
            assertArrayEquals(Files.readAllBytes(model), Files.readAllBytes(again));
        }
        failsCleanly("--dtype must be f32, bf16 or f16, got \"f8\"", dir.resolve("f8.safetensors"), "init", "--preset", "tiny",
                "--dtype", "f8", "--out", dir.resolve("f8.safetensors").toString());
    }

    @Test
    void infoReportsFlopsAndKvCacheForTheModelAndItsDenseCounterpart() {
        Path model = tinyModel();
        assertEquals(0, mod("info", model.toString(), "--seq", "64", "--stages"), stderr());
        String text = stdout();
        assertTrue(text.contains("k = 16 of T = 64"), text);
        assertTrue(text.contains("FLOPs per forward (T=64)"), text);
        assertTrue(text.contains("layer1.topk"), text);
        assertTrue(text.contains("layer1.scatter"), text);
        assertFalse(text.contains("layer0.topk"), text);
    }

    /** A config with experts: init writes every expert's weights, info counts the active share and shows the experts' stages. */
    @Test
    void aModelWithExpertsIsInitialisedAndDescribed() throws IOException {
        ModelConfig c = Presets.get("small").withExperts(new dev.mod.model.Experts(4, 1, 0.25, 32));
        Path config = Files.writeString(dir.resolve("moe.json"), c.toJson());
        Path model = dir.resolve("moe.safetensors");
        assertEquals(0, mod("init", "--config", config.toString(), "--out", model.toString()), stderr());
        try (Model m = ModelFile.load(model)) {
            assertEquals(c, m.config());
            assertEquals(c.tensorShapes().keySet(), m.tensors().keySet());
        }
        assertEquals(0, mod("info", model.toString(), "--seq", "64", "--stages"), stderr());
        String text = stdout();
        assertTrue(text.contains("4 experts + 1 no-op of hidden 32 at capacity 0.25"), text);
        assertTrue(text.contains("(4 experts + 1 no-op, 16 rows each)"), text);
        assertTrue(text.contains("(4 experts + 1 no-op, 2 rows each)"), text); // a quarter of the k = 8 rows of a routed block
        assertEquals(0, mod("info", "--model", model.toString(), "--seq", "64", "--json"), stderr());
        com.fasterxml.jackson.databind.JsonNode info = new com.fasterxml.jackson.databind.ObjectMapper().readTree(stdout());
        long perExpert = 3L * c.dim() * 32;
        assertEquals(info.get("parameters").asLong() - Math.round(c.nLayers() * 4 * 0.75 * perExpert), info.get("active_parameters").asLong());
        assertEquals(dev.mod.model.ModelCost.forwardFlops(c, 64), info.get("forward_flops").asDouble());
        assertEquals(4, info.get("config").get("experts").get("count").asInt());

        // generation routes the experts by calibrated thresholds: refused before calibration, then it runs
        assertEquals(1, mod("generate", "--model", model.toString(), "--prompt", "ab", "--max-tokens", "4"));
        assertTrue(stderr().contains("run mod calibrate on it first"), stderr());
        Path calibration = Files.writeString(dir.resolve("t.txt"), "public static void main(String[] args) { return; }\n".repeat(20));
        Path calibrated = dir.resolve("moe-c.safetensors");
        assertEquals(0, mod("calibrate", "--model", model.toString(), "--text", calibration.toString(), "--seq", "16", "--out",
                calibrated.toString()), stderr());
        assertTrue(stdout().contains("thresholds on each layer's 4 experts' probabilities"), stdout());
        assertEquals(0, mod("generate", "--model", calibrated.toString(), "--prompt", "ab", "--max-tokens", "4"), stderr());
    }

    @Test
    void infoJsonCountsThePredictorAndShowsTheMatrixTypeAndTheCalibration() throws IOException {
        Path model = dir.resolve("p.safetensors");
        assertEquals(0, mod("init", "--preset", "small", "--predictor-dim", "8", "--dtype", "bf16", "--out", model.toString()), stderr());
        assertTrue(stdout().contains("in the routing predictors"), stdout());
        assertEquals(0, mod("info", "--model", model.toString(), "--seq", "16", "--json"), stderr());
        com.fasterxml.jackson.databind.JsonNode info = new com.fasterxml.jackson.databind.ObjectMapper().readTree(stdout());
        ModelConfig c = Presets.get("small");
        assertEquals("BF16", info.get("matrix_dtype").asText());
        assertEquals(8, info.get("predictor_dim").asInt());
        assertEquals(c.routedLayers().size() * (8L * c.dim() + 8), info.get("predictor_parameters").asLong());
        assertTrue(info.get("calibration").isNull());
        assertEquals(c.capacityTokens(16), info.get("capacity_tokens").asInt());
        Path text = Files.writeString(dir.resolve("t.txt"), "public static void main(String[] args) { return; }\n".repeat(20));
        Path calibrated = dir.resolve("c.safetensors");
        assertEquals(0, mod("calibrate", "--model", model.toString(), "--text", text.toString(), "--seq", "16", "--out",
                calibrated.toString()), stderr());
        assertEquals(0, mod("info", "--model", calibrated.toString(), "--json"), stderr());
        info = new com.fasterxml.jackson.databind.ObjectMapper().readTree(stdout());
        assertEquals(c.routedLayers().size(), info.get("calibration").get("thresholds").size(), stdout());
        assertEquals(16, info.get("calibration").get("seq_len").asInt());
    }

    @Test
    void demoTimesBothModelsInRoundsAndReportsTheFlopRatioAndTheSpread() {
        Path model = tinyModel();
        assertEquals(0, mod("demo", "--model", model.toString(), "--seq", "32", "--repeats", "3", "--warmup-seconds", "0"), stderr());
        ModelConfig c = Presets.get("tiny");
        double ratio = dev.mod.model.ModelCost.forwardFlops(c, 32) / dev.mod.model.ModelCost.forwardFlops(c.dense(), 32);
        assertTrue(stdout().contains(String.format("MoD / dense: FLOPs %.3f, time ", ratio)), stdout());
        assertTrue(stdout().contains("(median of 3 rounds, each one run of both; middle half of the rounds' ratios "), stdout());
        refused("--repeats must be at least 3, got 2", "demo", "--model", model.toString(), "--seq", "32", "--repeats", "2");
    }

    @Test
    void infoTakesTheModelAsEveryCommandDoesOrAsItsArgument() {
        String model = tinyModel().toString();
        assertEquals(0, mod("info", model, "--seq", "64"), stderr());
        String positional = stdout();
        assertEquals(0, mod("info", "--model", model, "--seq", "64"), stderr());
        assertEquals(positional, stdout());
        assertEquals(1, mod("info", "--seq", "64"));
        assertEquals("mod: error: info needs a model: --model MODEL (or MODEL)", stderr().strip());
        assertEquals(1, mod("info", model, "--model", model));
        assertEquals("mod: error: info takes one model: MODEL or --model, not both", stderr().strip());
    }

    @Test
    void helpListsEveryCommandInItsGroup() {
        assertEquals(0, mod("--help"), stderr());
        String help = stdout();
        for (String command : new String[] {"init", "info", "calibrate", "import", "export", "forward", "generate", "eval", "demo", "devices", "train",
                "train-plot", "study", "sweep", "help"}) {
            assertTrue(help.lines().anyMatch(l -> l.startsWith("  " + command + " ")), command + " missing from\n" + help);
        }
        assertTrue(help.indexOf("Models:") < help.indexOf("  init ") && help.indexOf("Experiments:") < help.indexOf("  sweep "), help);
    }

    @Test
    void aMistypedCommandGetsASuggestionAndAMissingArgumentOneError() {
        assertEquals(2, mod("stduy"));
        assertTrue(stderr().strip().startsWith("mod: error: Unmatched argument at index 0: 'stduy'; did you mean study?"), stderr());
        assertEquals(2, mod("init", "--preset", "smal", "--out", dir.resolve("x").toString()));
        assertTrue(stderr().contains("unknown preset \"smal\" (known: tiny, small, bench)"), stderr());
        assertFalse(Files.exists(dir.resolve("x")));
        assertEquals(2, mod("init", "--out", dir.resolve("x").toString()));
        assertTrue(stderr().startsWith("mod: error: Missing required argument"), stderr());
    }

    @Test
    void everyCommandsHelpFormatsWithoutAWarning() {
        for (String command : List.of("", "init", "info", "calibrate", "import", "export", "forward", "generate", "eval", "demo", "devices", "train", "train-plot",
                "study", "study compare", "sweep", "sweep report")) {
            List<String> args = new java.util.ArrayList<>(command.isEmpty() ? List.of() : List.of(command.split(" ")));
            args.add("--help");
            assertEquals(0, mod(args.toArray(String[]::new)), command + ": " + stderr());
            assertFalse(stderr().contains("WARN") || stdout().contains("WARN"), "mod " + command + " --help:\n" + stderr());
        }
    }

    @Test
    void forwardWritesLogitsSelectionsAndRouterLogits() {
        Path model = tinyModel();
        Path result = dir.resolve("out.safetensors");
        String tokens = "1,2,3,4,5,6,7,8;9,10,11,12,13,14,15,16";
        assertEquals(0, mod("forward", "--model", model.toString(), "--tokens", tokens, "--out", result.toString(),
                "--backend", "reference"), stderr());
        try (Model m = ModelFile.load(model); SafetensorsFile f = SafetensorsFile.open(result)) {
            int[][] batch = {{1, 2, 3, 4, 5, 6, 7, 8}, {9, 10, 11, 12, 13, 14, 15, 16}};
            ForwardPlan plan = TestModels.run(m, batch);
            assertArrayEquals(new long[] {2, 8, 64}, f.tensor("logits").shape());
            assertArrayEquals(plan.logits(), f.tensor("logits").toFloatArray());
            assertArrayEquals(new long[] {2, 2}, f.tensor("layers.1.selected").shape());
            assertArrayEquals(plan.selected(1), f.tensor("layers.1.selected").toIntArray());
            assertArrayEquals(plan.routerLogits(1), f.tensor("layers.1.router").toFloatArray());
            assertFalse(f.tensors().containsKey("layers.0.selected"));
        }
    }

    @Test
    void forwardReadsATokensFile() throws IOException {
        Path model = tinyModel();
        // A byte-order mark, as some editors write one, is not part of the first id.
        Path tokens = Files.writeString(dir.resolve("t.txt"), "\uFEFF1 2 3 4\n5 6 7 8\n");
        Path result = dir.resolve("out.safetensors");
        assertEquals(0, mod("forward", "--model", model.toString(), "--tokens-file", tokens.toString(), "--out", result.toString()), stderr());
        try (SafetensorsFile f = SafetensorsFile.open(result)) {
            assertArrayEquals(new long[] {2, 4, 64}, f.tensor("logits").shape());
        }
    }

    @Test
    void nonFiniteLogitsAreAnErrorUnlessAllowedAndGenerationStopsOnThem() throws IOException {
        Path nan = dir.resolve("nan.safetensors");
        try (Model m = ModelInit.random(Presets.get("tiny"), 3)) {
            // One NaN in the output projection: every position's logit of that token is NaN.
            m.output().data().setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, 5L * m.config().dim() + 2, Float.NaN);
            ModelFile.save(m, nan);
        }
        Path result = dir.resolve("out.safetensors");
        for (String routing : new String[] {"topk", "router"}) {
            failsCleanly("the logits at sequence 0, position 0 are not finite (NaN for token 5)", result, "forward", "--model",
                    nan.toString(), "--tokens", "1,2,3", "--routing", routing, "--out", result.toString());
        }
        assertEquals(0, mod("forward", "--model", nan.toString(), "--tokens", "1,2,3", "--allow-non-finite", "--out", result.toString()), stderr());
        try (SafetensorsFile f = SafetensorsFile.open(result)) {
            assertTrue(Float.isNaN(f.tensor("logits").toFloatArray()[5]));
        }
        try (Model m = ModelInit.random(Presets.get("small"), 1)) {
            m.output().data().setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, 7L * m.config().dim(), Float.POSITIVE_INFINITY);
            ModelFile.save(m, nan);
        }
        assertEquals(1, mod("generate", "--model", nan.toString(), "--prompt", "hi", "--max-tokens", "3"));
        assertTrue(stderr().strip().startsWith("mod: error: the logits at the end of prompt 1 are not finite"), stderr());
    }

    /** A bad run: exit 1, one line on stderr naming the problem, and the output file untouched. */
    private void failsCleanly(String expected, Path output, String... args) throws IOException {
        byte[] before = Files.exists(output) ? Files.readAllBytes(output) : null;
        assertEquals(1, mod(args), stderr());
        String message = stderr().strip();
        assertFalse(message.contains("\n"), "one line: " + message);
        assertTrue(message.startsWith("mod: error: "), message);
        assertTrue(message.contains(expected), message);
        if (before == null) {
            assertFalse(Files.exists(output), "no output written");
        } else {
            assertArrayEquals(before, Files.readAllBytes(output), "the earlier good output is kept");
        }
        try (var files = Files.list(output.toAbsolutePath().getParent())) {
            assertTrue(files.noneMatch(p -> p.getFileName().toString().endsWith(".tmp")), "no temporary file left");
        }
    }

    @Test
    void badForwardInputs() throws IOException {
        String model = tinyModel().toString();
        Path result = dir.resolve("out.safetensors");
        failsCleanly("outside the vocabulary", result, "forward", "--model", model, "--tokens", "1,2,64", "--out", result.toString());
        failsCleanly("rows must all have the same length", result, "forward", "--model", model, "--tokens", "1,2,3;4,5", "--out", result.toString());
        failsCleanly("not an integer token id", result, "forward", "--model", model, "--tokens", "1,x", "--out", result.toString());
        failsCleanly("no tokens given", result, "forward", "--model", model, "--tokens", " ; ", "--out", result.toString());
        failsCleanly("cannot read tokens file " + dir.resolve("none.txt") + ": no such file or directory", result, "forward", "--model", model,
                "--tokens-file", dir.resolve("none.txt").toString(), "--out", result.toString());
        failsCleanly("cannot read tokens file " + dir + ": it is a directory", result, "forward", "--model", model,
                "--tokens-file", dir.toString(), "--out", result.toString());
        failsCleanly("row 0 has an empty token id at position 1", result, "forward", "--model", model, "--tokens", "1,,2", "--out", result.toString());
        failsCleanly("row 1 has an empty token id at position 2", result, "forward", "--model", model, "--tokens", "1,2,3;4,5,", "--out", result.toString());
        failsCleanly("\"\u0661\" in row 0 is not an integer token id", result, "forward", "--model", model, "--tokens", "1,\u0661", "--out", result.toString());
        String tooLong = String.join(",", java.util.Collections.nCopies(65, "1"));
        failsCleanly("above the model's max_seq_len 64", result, "forward", "--model", model, "--tokens", tooLong, "--out", result.toString());
        failsCleanly("no such file", result, "forward", "--model", dir.resolve("absent").toString(), "--tokens", "1", "--out", result.toString());
        Path huge = dir.resolve("huge.txt");
        try (java.io.RandomAccessFile sparse = new java.io.RandomAccessFile(huge.toFile(), "rw")) {
            sparse.setLength(Runtime.getRuntime().maxMemory() / 8 + 1);
        }
        failsCleanly("the tokens file " + huge + " (" + Files.size(huge) + " bytes) and its rows need ", result, "forward", "--model", model,
                "--tokens-file", huge.toString(), "--out", result.toString());

        assertEquals(0, mod("forward", "--model", model, "--tokens", "1,2,3", "--out", result.toString()), stderr());
        failsCleanly("outside the vocabulary", result, "forward", "--model", model, "--tokens", "-1", "--out", result.toString());
    }

    /** Outputs that would destroy something: each refused in one line, and what was there is kept as it was. */
    @Test
    void outputsThatWouldReplaceAnInputOrANonRegularFileAreRefused() throws IOException {
        Path model = tinyModel();
        String m = model.toString();
        failsCleanly("is the run's input", model, "forward", "--model", m, "--tokens", "1,2,3", "--out", m);
        Path otherSpelling = dir.resolve(".").resolve(model.getFileName());
        failsCleanly("is the run's input", model, "forward", "--model", m, "--tokens", "1,2,3", "--out", otherSpelling.toString());
        Path tokensFile = dir.resolve("tokens.txt");
        Files.writeString(tokensFile, "1,2,3\n");
        failsCleanly("is the run's input", tokensFile, "forward", "--model", m, "--tokens-file", tokensFile.toString(),
                "--out", tokensFile.toString());
        Path link = dir.resolve("link.safetensors");
        Path target = dir.resolve("target.safetensors");
        Files.writeString(target, "mine");
        Files.createSymbolicLink(link, target);
        failsCleanly("it is a symbolic link", target, "forward", "--model", m, "--tokens", "1,2,3", "--out", link.toString());
        assertTrue(Files.isSymbolicLink(link), "the link is kept");
        Path folder = Files.createDirectories(dir.resolve("folder"));
        assertEquals(1, mod("forward", "--model", m, "--tokens", "1,2,3", "--out", folder.toString()));
        assertTrue(stderr().strip().endsWith("it is a directory"), stderr());
        assertEquals(1, mod("forward", "--model", m, "--tokens", "1,2,3", "--out", "/"));
        assertTrue(stderr().strip().startsWith("mod: error: cannot write /: "), stderr());
    }

    @Test
    void anErrorEchoesAtMost500CharactersOfTheInput() {
        String path = dir.resolve("x".repeat(200)).resolve("y".repeat(200)).resolve("z".repeat(200)).toString();
        assertEquals(1, mod("forward", "--model", path, "--tokens", "1", "--out", dir.resolve("o.safetensors").toString()));
        String line = stderr().strip();
        assertTrue(line.length() < 600 && line.contains(" more characters)") && !line.contains("\n"), line);
    }

    @Test
    void aReplacedOutputKeepsItsPermissions() throws IOException {
        Path result = dir.resolve("out.safetensors");
        Files.writeString(result, "old");
        assumeTrue(Files.getFileStore(result).supportsFileAttributeView("posix"), "no POSIX permissions here");
        Files.setPosixFilePermissions(result, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
        assertEquals(0, mod("forward", "--model", tinyModel().toString(), "--tokens", "1,2,3", "--out", result.toString()), stderr());
        assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(result)));
    }

    @Test
    void corruptModelFile() throws IOException {
        Path model = tinyModel();
        byte[] bytes = Files.readAllBytes(model);
        Files.write(model, Arrays.copyOf(bytes, bytes.length / 2));
        Path result = dir.resolve("out.safetensors");
        failsCleanly("point outside the file", result, "forward", "--model", model.toString(), "--tokens", "1", "--out", result.toString());
        failsCleanly("point outside the file", result, "info", model.toString());
    }

    @Test
    void badConfigForInit() throws IOException {
        Path json = Files.writeString(dir.resolve("c.json"), TestModels.config(2, 2, 0.5, List.of(1), RouterWeighting.RAW).toJson()
                .replace("\"routed_layers\" : [ 1 ]", "\"routed_layers\" : [ 7 ]"));
        Path model = dir.resolve("m.safetensors");
        failsCleanly("routed layer index 7 is out of range", model, "init", "--config", json.toString(), "--out", model.toString());
    }

    @Test
    void theTornadoBackendOutsideTornadoVmIsAOneLineError() throws IOException {
        org.junit.jupiter.api.Assumptions.assumeTrue(dev.mod.backend.Backends.tornadoDevices().isEmpty(), "this run is under TornadoVM");
        Path result = dir.resolve("out.safetensors");
        String model = tinyModel().toString();
        for (String[] args : List.of(
                new String[] {"forward", "--backend", "tornado", "--model", model, "--tokens", "1,2", "--out", result.toString()},
                new String[] {"demo", "--backend", "tornado", "--model", model, "--seq", "8"},
                new String[] {"train", "--backend", "tornado", "--preset", "small", "--data", "copy", "--steps", "1", "--out",
                        dir.resolve("run").toString()})) {
            assertEquals(2, mod(args), "a usage error: " + stderr());
            assertTrue(stderr().startsWith("mod: error: --backend tornado: the tornado backend runs under TornadoVM"), stderr());
            assertFalse(Files.exists(result) || Files.exists(dir.resolve("run")), "nothing written");
        }
        assertEquals(0, mod("devices"));
        assertTrue(stdout().contains("tornado    not available in this run"), stdout());
    }

    @Test
    void usageErrorsExitWithTwo() {
        assertEquals(2, mod("forward", "--model", "x"));
        assertTrue(stderr().startsWith("mod: error: "), stderr());
        assertEquals(2, mod("init", "--preset", "tiny", "--config", "c.json", "--out", "m"));
        assertEquals(2, mod());
        assertTrue(stderr().startsWith("mod: error: no command given"), stderr());
    }
}
