package dev.mod.io;

import dev.mod.ModException;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.RoutingCalibration;
import dev.mod.model.Tensor;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The model file: safetensors with the config as JSON under the metadata key "config" and
 * "format": "mod", and the thresholds of the calibrated causal routing rule under "calibration" when the
 * model was calibrated. Tensors are read in place from the mapping (F32, F16 or BF16); writing stores F32.
 */
public final class ModelFile {
    public static final String FORMAT = "mod";

    private ModelFile() {
    }

    public static Model load(Path path) {
        SafetensorsFile file = SafetensorsFile.open(path);
        try {
            Map<String, String> meta = file.metadata();
            String format = meta.get("format");
            if (format != null && !format.equals(FORMAT)) {
                throw new ModException(path + ": not a mod model file (format \"" + format + "\")");
            }
            String json = meta.get("config");
            if (json == null) {
                throw new ModException(path + ": no model config in the file's metadata (key \"config\")");
            }
            ModelConfig config;
            try {
                config = ModelConfig.fromJson(json);
            } catch (ModException e) {
                throw new ModException(path + ": " + e.getMessage(), e);
            }
            RoutingCalibration calibration = null;
            String calibrationJson = meta.get("calibration");
            if (calibrationJson != null) {
                try {
                    calibration = RoutingCalibration.fromJson(calibrationJson);
                } catch (ModException e) {
                    throw new ModException(path + ": " + e.getMessage(), e);
                }
            }
            try {
                return new Model(config, file.tensors(), file, calibration, meta.getOrDefault("tokenizer", Model.BYTE_TOKENS));
            } catch (ModException e) {
                throw new ModException(path + ": " + e.getMessage(), e);
            }
        } catch (RuntimeException e) {
            file.close();
            throw e;
        }
    }

    /** The file's SHA-256 in hex: what a run started from it records, to know the file again. */
    public static String sha256(Path path) {
        try (InputStream in = Files.newInputStream(path)) {
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            byte[] buffer = new byte[1 << 20];
            for (int n; (n = in.read(buffer)) > 0; ) {
                digest.update(buffer, 0, n);
            }
            return HexFormat.of().formatHex(digest.digest());
        } catch (IOException e) {
            throw new ModException("cannot read " + path + ": " + IoErrors.describe(e), e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    public static void save(Model model, Path path) {
        List<Tensor> tensors = new ArrayList<>(model.tensors().values());
        Map<String, String> metadata = new LinkedHashMap<>();
        metadata.put("format", FORMAT);
        metadata.put("config", model.config().toJson());
        if (model.calibration() != null) {
            metadata.put("calibration", model.calibration().toJson());
        }
        if (!model.tokenizer().equals(Model.BYTE_TOKENS)) {
            metadata.put("tokenizer", model.tokenizer());
        }
        SafetensorsWriter.write(path, metadata, tensors);
    }
}
