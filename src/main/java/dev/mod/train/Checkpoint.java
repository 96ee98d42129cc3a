package dev.mod.train;

import dev.mod.ModException;
import dev.mod.io.SafetensorsFile;
import dev.mod.io.SafetensorsWriter;
import dev.mod.model.Tensor;

import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A training checkpoint: one safetensors file with the FP32 master weights (named as in model files), the
 * AdamW moments ("adam.m." and "adam.v." prefixes), and in its metadata the training settings, the step,
 * the optimizer's step and the data generator's state. Written atomically, so a crash never leaves half a
 * checkpoint; resuming from it continues the run bit for bit.
 *
 * <p>Nothing corrupt is accepted: the metadata carries a SHA-256 of every tensor's bytes and every other field, read
 * back and compared; the step must lie within the run (1 to its steps, the optimizer's the same), and every value must
 * be finite. A checkpoint is not written from a state with a non-finite value either.
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
        String nonFinite = firstNonFinite(params, m, v);
        if (nonFinite != null) {
            throw new ModException("the run's state holds a non-finite value in " + nonFinite + ": no checkpoint written");
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        metadata.put("format", FORMAT);
        metadata.put("config", settings.config().toJson());
        metadata.put("settings", settings.toJson());
        metadata.put("step", Long.toString(step));
        metadata.put("adam_step", Long.toString(adamStep));
        metadata.put("rng_state", Long.toString(rngState));
        metadata.put("sha256", checksum(metadata, tensors));
        SafetensorsWriter.write(file, metadata, tensors);
    }

    // SHA-256 of the metadata's fields but the checksum, then of each tensor's name, shape and bytes, both by name
    private static String checksum(Map<String, String> metadata, Collection<Tensor> tensors) {
        MessageDigest digest;
        try {
            digest = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        for (Map.Entry<String, String> e : new java.util.TreeMap<>(metadata).entrySet()) {
            if (!e.getKey().equals("sha256")) {
                digest.update((e.getKey() + "=" + e.getValue() + "\n").getBytes(StandardCharsets.UTF_8));
            }
        }
        for (Tensor t : tensors.stream().sorted(java.util.Comparator.comparing(Tensor::name)).toList()) {
            digest.update((t.name() + java.util.Arrays.toString(t.shape()) + "\n").getBytes(StandardCharsets.UTF_8));
            long size = t.data().byteSize();
            for (long at = 0; at < size; at += 1 << 20) {
                digest.update(t.data().asSlice(at, Math.min(1 << 20, size - at)).toArray(ValueLayout.JAVA_BYTE));
            }
        }
        return HexFormat.of().formatHex(digest.digest());
    }

    // the first tensor with a NaN or an infinity (its name, "adam.m." or "adam.v." before a moment's), or null
    private static String firstNonFinite(Parameters params, Parameters m, Parameters v) {
        String[] prefixes = {"", M, V};
        Parameters[] sets = {params, m, v};
        for (int i = 0; i < sets.length; i++) {
            for (String name : sets[i].names()) {
                for (float x : sets[i].get(name)) {
                    if (!Float.isFinite(x)) {
                        return prefixes[i] + name;
                    }
                }
            }
        }
        return null;
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
            String stored = required(meta, "sha256", file);
            Map<String, String> fields = new LinkedHashMap<>(meta);
            fields.remove("sha256");
            if (!stored.equals(checksum(fields, f.tensors().values()))) {
                throw new ModException(file + ": the checkpoint is corrupt (its SHA-256 does not match its contents)");
            }
            Parameters p = Parameters.of(params, "");
            Parameters pm = Parameters.of(m, M);
            Parameters pv = Parameters.of(v, V);
            if (!p.names().equals(pm.names()) || !p.names().equals(pv.names())) {
                throw new ModException(file + ": the optimizer state does not match the weights");
            }
            String nonFinite = firstNonFinite(p, pm, pv);
            if (nonFinite != null) {
                throw new ModException(file + ": the checkpoint holds a non-finite value in " + nonFinite);
            }
            TrainSettings settings = TrainSettings.fromJson(required(meta, "settings", file));
            long step = number(meta, "step", file);
            long adamStep = number(meta, "adam_step", file);
            if (step < 1 || step > settings.steps()) {
                throw new ModException(file + ": the checkpoint's step " + step + " is not within the run's 1 to " + settings.steps());
            }
            if (adamStep != step) {
                throw new ModException(file + ": the optimizer's step " + adamStep + " is not the checkpoint's step " + step);
            }
            return new Checkpoint(settings, p, pm, pv, step, adamStep, number(meta, "rng_state", file));
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
