package dev.mod.io;

import dev.mod.ModException;
import dev.mod.TestModels;
import dev.mod.model.DType;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.RouterWeighting;
import dev.mod.model.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModelFileTest {
    @TempDir
    Path dir;

    private final ModelConfig config = TestModels.config(2, 2, 0.25, List.of(1), RouterWeighting.SIGMOID);

    @Test
    void modelRoundTripsBitExactly() {
        Model model = TestModels.model(config, 7);
        Path file = dir.resolve("m.safetensors");
        ModelFile.save(model, file);
        try (Model loaded = ModelFile.load(file)) {
            assertEquals(config, loaded.config());
            for (Map.Entry<String, Tensor> e : model.tensors().entrySet()) {
                Tensor back = loaded.tensor(e.getKey());
                assertEquals(DType.F32, back.dtype());
                assertArrayEquals(e.getValue().shape(), back.shape());
                assertArrayEquals(bits(e.getValue()), bits(back), e.getKey());
            }
        }
    }

    @Test
    void headerIsAlignedAndDataContiguous() throws IOException {
        Path file = dir.resolve("m.safetensors");
        ModelFile.save(TestModels.model(config, 1), file);
        byte[] bytes = Files.readAllBytes(file);
        long n = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, (8 + n) % 8);
        long params = TestModels.model(config, 1).tensors().values().stream().mapToLong(Tensor::numel).sum();
        assertEquals(8 + n + 4 * params, bytes.length);
    }

    @Test
    void readsF16AndBf16() {
        float[] values = {1.5f, -2.25f, 0.0f, 65504f, 3.0e-5f, -0.1f};
        short[] f16 = new short[values.length];
        short[] bf16 = new short[values.length];
        for (int i = 0; i < values.length; i++) {
            f16[i] = Float.floatToFloat16(values[i]);
            bf16[i] = (short) (Float.floatToRawIntBits(values[i]) >>> 16);
        }
        Path file = dir.resolve("half.safetensors");
        SafetensorsWriter.write(file, Map.of(), List.of(
                new Tensor("a", DType.F16, new long[] {2, 3}, MemorySegment.ofArray(f16)),
                new Tensor("b", DType.BF16, new long[] {6}, MemorySegment.ofArray(bf16))));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (int i = 0; i < values.length; i++) {
                assertEquals(Float.float16ToFloat(f16[i]), f.tensor("a").get(i));
                assertEquals(Float.intBitsToFloat(bf16[i] << 16), f.tensor("b").get(i));
            }
            assertEquals(1.5f, f.tensor("a").get(0));
            assertEquals(-2.25f, f.tensor("b").get(1));
        }
    }

    @Test
    void loadsAModelStoredInHalfPrecision() {
        Model model = TestModels.model(config, 3);
        Map<String, String> meta = Map.of("format", "mod", "config", config.toJson());
        List<Tensor> halves = new ArrayList<>();
        for (Tensor t : model.tensors().values()) {
            float[] v = t.toFloatArray();
            short[] h = new short[v.length];
            for (int i = 0; i < v.length; i++) {
                h[i] = (short) (Float.floatToRawIntBits(v[i]) >>> 16);
            }
            halves.add(new Tensor(t.name(), DType.BF16, t.shape(), MemorySegment.ofArray(h)));
        }
        Path file = dir.resolve("bf16.safetensors");
        SafetensorsWriter.write(file, meta, halves);
        try (Model loaded = ModelFile.load(file)) {
            Tensor wq = loaded.tensor("layers.0.attention.wq.weight");
            assertEquals(DType.BF16, wq.dtype());
            float original = model.tensor("layers.0.attention.wq.weight").get(5);
            assertEquals(Float.intBitsToFloat(Float.floatToRawIntBits(original) & 0xffff0000), wq.get(5));
        }
    }

    // --- bad files: each a one-line ModException that names the problem ---

    private Path goodFile() {
        Path file = dir.resolve("good.safetensors");
        ModelFile.save(TestModels.model(config, 1), file);
        return file;
    }

    private static String loadError(Path file) {
        ModException e = assertThrows(ModException.class, () -> ModelFile.load(file).close());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        return e.getMessage();
    }

    @Test
    void truncatedFile() throws IOException {
        Path file = goodFile();
        byte[] bytes = Files.readAllBytes(file);
        Files.write(file, Arrays.copyOf(bytes, bytes.length - 10));
        assertTrue(loadError(file).contains("point outside the file"), loadError(file));
        Files.write(file, Arrays.copyOf(bytes, 5));
        assertTrue(loadError(file).contains("truncated"), loadError(file));
        Files.write(file, Arrays.copyOf(bytes, 100));
        assertTrue(loadError(file).contains("truncated"), loadError(file));
    }

    @Test
    void emptyAndMissingFiles() throws IOException {
        Path empty = Files.createFile(dir.resolve("empty.safetensors"));
        assertTrue(loadError(empty).contains("truncated"), loadError(empty));
        assertTrue(loadError(dir.resolve("absent.safetensors")).contains("no such file"));
    }

    @Test
    void headerLengthBeyondTheFile() throws IOException {
        Path file = goodFile();
        byte[] bytes = Files.readAllBytes(file);
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putLong(0, bytes.length);
        Files.write(file, bytes);
        assertTrue(loadError(file).contains("truncated"), loadError(file));
    }

    /** Writes a file with the given JSON header (padded) and data bytes. */
    private Path rawFile(String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer buf = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        buf.putLong(h.length).put(h);
        Path file = dir.resolve("raw.safetensors");
        Files.write(file, buf.array());
        return file;
    }

    @Test
    void corruptHeaders() throws IOException {
        assertTrue(loadError(rawFile("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, \"b\": "
                + "{\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 12)).contains("overlap"));
        assertTrue(loadError(rawFile("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 16]}}", 8))
                .contains("point outside the file"));
        assertTrue(loadError(rawFile("{\"a\": {\"dtype\": \"Q4\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8))
                .contains("unsupported dtype \"Q4\""));
        assertTrue(loadError(rawFile("{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8))
                .contains("needs 12"));
        assertTrue(loadError(rawFile("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}", 8))
                .contains("backwards"));
        assertTrue(loadError(rawFile("{\"a\": [1, 2", 0)).contains("invalid JSON"));
        assertTrue(loadError(rawFile("[1, 2]", 0)).contains("not a JSON object"));
        assertTrue(loadError(rawFile("{\"a\": {\"dtype\": \"F32\"}}", 0)).contains("needs dtype, shape and data_offsets"));
        assertTrue(loadError(rawFile("{\"__metadata__\": {\"x\": 1}}", 0)).contains("not a string"));
        // A tensor or a metadata key given twice, and bytes after the JSON value: not "the last one wins".
        String a = "\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}";
        assertTrue(loadError(rawFile("{" + a + ", " + a + "}", 8)).contains("Duplicate field 'a'"), loadError(rawFile("{" + a + ", " + a + "}", 8)));
        assertTrue(loadError(rawFile("{\"__metadata__\": {\"format\": \"mod\", \"format\": \"pt\"}}", 0)).contains("Duplicate field 'format'"));
        assertTrue(loadError(rawFile("{" + a + "} {}", 8)).contains("invalid JSON"), loadError(rawFile("{" + a + "} {}", 8)));
    }

    @Test
    void fileWithoutConfigOrOfAnotherFormat() throws IOException {
        assertTrue(loadError(rawFile("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 8))
                .contains("no model config"));
        assertTrue(loadError(rawFile("{\"__metadata__\": {\"format\": \"pt\"}}", 0)).contains("format \"pt\""));
    }

    private Path withTensors(Map<String, Tensor> tensors) {
        Path file = dir.resolve("edited.safetensors");
        SafetensorsWriter.write(file, Map.of("format", "mod", "config", config.toJson()), List.copyOf(tensors.values()));
        return file;
    }

    @Test
    void missingTensor() {
        Map<String, Tensor> tensors = new LinkedHashMap<>(TestModels.model(config, 1).tensors());
        tensors.remove("layers.1.router.weight");
        assertTrue(loadError(withTensors(tensors)).contains("missing tensor layers.1.router.weight"));
    }

    @Test
    void shapeThatDisagreesWithTheConfig() {
        Map<String, Tensor> tensors = new LinkedHashMap<>(TestModels.model(config, 1).tensors());
        tensors.put("layers.0.feed_forward.w1.weight", Tensor.of("layers.0.feed_forward.w1.weight", new float[16 * 25], 25, 16));
        String message = loadError(withTensors(tensors));
        assertTrue(message.contains("layers.0.feed_forward.w1.weight has shape [25, 16] but the config needs [24, 16]"), message);
    }

    @Test
    void unexpectedTensorAndIntegerWeights() {
        Map<String, Tensor> tensors = new LinkedHashMap<>(TestModels.model(config, 1).tensors());
        tensors.put("layers.0.extra.weight", Tensor.of("layers.0.extra.weight", new float[2], 2));
        assertTrue(loadError(withTensors(tensors)).contains("unexpected tensor layers.0.extra.weight"));
        tensors.remove("layers.0.extra.weight");
        tensors.put("norm.weight", Tensor.ofInts("norm.weight", new int[16], 16));
        assertTrue(loadError(withTensors(tensors)).contains("norm.weight has dtype I32"));
    }

    @Test
    void invalidConfigInTheFile() {
        Map<String, Tensor> tensors = TestModels.model(config, 1).tensors();
        Path file = dir.resolve("bad-config.safetensors");
        SafetensorsWriter.write(file, Map.of("config", config.toJson().replace("0.25", "1.25")), List.copyOf(tensors.values()));
        assertTrue(loadError(file).contains("capacity must be in (0, 1]"));
    }

    @Test
    void predictorTensorsMustComeInPairsOfOneShape() {
        Map<String, Tensor> tensors = new LinkedHashMap<>(dev.mod.model.ModelInit.random(config, 1, 6).tensors());
        try (Model loaded = ModelFile.load(withTensors(tensors))) {
            assertEquals(6, loaded.predictorDim());
        }
        tensors.remove("layers.1.predictor.w2.weight");
        assertTrue(loadError(withTensors(tensors)).contains("only one of the predictor's tensors"));
        tensors.put("layers.1.predictor.w2.weight", Tensor.of("layers.1.predictor.w2.weight", new float[5], 1, 5));
        assertTrue(loadError(withTensors(tensors)).contains("expected [P, 16] and [1, P]"));
    }

    @Test
    void calibrationRoundTripsAndIsCheckedAgainstTheRoutedLayers() {
        Model model = TestModels.model(config, 1);
        var calibration = new dev.mod.model.RoutingCalibration(Map.of(1, -0.25), 64, 32, 0.25);
        Path file = dir.resolve("calibrated.safetensors");
        ModelFile.save(model.withCalibration(calibration), file);
        try (Model loaded = ModelFile.load(file)) {
            assertEquals(calibration, loaded.calibration());
        }
        Path wrong = dir.resolve("wrong-calibration.safetensors");
        SafetensorsWriter.write(wrong, Map.of("format", "mod", "config", config.toJson(), "calibration",
                new dev.mod.model.RoutingCalibration(Map.of(0, 1.0), 64, 32, 0.25).toJson()), List.copyOf(model.tensors().values()));
        assertTrue(loadError(wrong).contains("thresholds for layers [0] but the config routes layers [1]"), loadError(wrong));
    }

    private static int[] bits(Tensor t) {
        float[] v = t.toFloatArray();
        int[] b = new int[v.length];
        for (int i = 0; i < v.length; i++) {
            b[i] = Float.floatToRawIntBits(v[i]);
        }
        return b;
    }
}
