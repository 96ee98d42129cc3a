package dev.mod.train;

import dev.mod.ModException;
import dev.mod.io.SafetensorsFile;
import dev.mod.io.SafetensorsWriter;
import dev.mod.model.Tensor;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A training checkpoint: one safetensors file with the FP32 master weights (named as in model files), the
 * AdamW moments ("adam.m." and "adam.v." prefixes), and in its metadata the training settings, the step,
 * the optimizer's step and the data generator's state. Written atomically, so a crash never leaves half a
 * checkpoint; resuming from it continues the run bit for bit.
 */
public record Checkpoint(TrainSettings settings, Parameters params, Parameters m, Parameters v, long step, long adamStep,
                         long rngState) {
    public static final String FORMAT = "mod-checkpoint";
    private static final String M = "adam.m.";
    private static final String V = "adam.v.";

    public void write(Path file) {
        List<Tensor> tensors = new ArrayList<>(params.tensors(""));
        tensors.addAll(m.tensors(M));
        tensors.addAll(v.tensors(V));
        Map<String, String> metadata = new LinkedHashMap<>();
        metadata.put("format", FORMAT);
        metadata.put("config", settings.config().toJson());
        metadata.put("settings", settings.toJson());
        metadata.put("step", Long.toString(step));
        metadata.put("adam_step", Long.toString(adamStep));
        metadata.put("rng_state", Long.toString(rngState));
        SafetensorsWriter.write(file, metadata, tensors);
    }

    public static Checkpoint read(Path file) {
        if (!Files.isRegularFile(file)) {
            throw new ModException("nothing to resume: no checkpoint " + file);
        }
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            Map<String, String> meta = f.metadata();
            if (!FORMAT.equals(meta.get("format"))) {
                throw new ModException(file + ": not a training checkpoint (format \"" + meta.get("format") + "\")");
            }
            List<Tensor> params = new ArrayList<>();
            List<Tensor> m = new ArrayList<>();
            List<Tensor> v = new ArrayList<>();
            for (Tensor t : f.tensors().values()) {
                (t.name().startsWith(M) ? m : t.name().startsWith(V) ? v : params).add(t);
            }
            Parameters p = Parameters.of(params, "");
            Parameters pm = Parameters.of(m, M);
            Parameters pv = Parameters.of(v, V);
            if (!p.names().equals(pm.names()) || !p.names().equals(pv.names())) {
                throw new ModException(file + ": the optimizer state does not match the weights");
            }
            return new Checkpoint(TrainSettings.fromJson(required(meta, "settings", file)), p, pm, pv,
                    number(meta, "step", file), number(meta, "adam_step", file), number(meta, "rng_state", file));
        } catch (ModException e) {
            throw e.getMessage().startsWith(file.toString()) ? e : new ModException(file + ": " + e.getMessage(), e);
        }
    }

    private static String required(Map<String, String> meta, String key, Path file) {
        String value = meta.get(key);
        if (value == null) {
            throw new ModException(file + ": checkpoint metadata lacks \"" + key + "\"");
        }
        return value;
    }

    private static long number(Map<String, String> meta, String key, Path file) {
        try {
            return Long.parseLong(required(meta, key, file));
        } catch (NumberFormatException e) {
            throw new ModException(file + ": checkpoint metadata \"" + key + "\" is not a number");
        }
    }
}
