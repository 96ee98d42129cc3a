package dev.mod.cli;

import dev.mod.ModException;
import dev.mod.io.IoErrors;
import dev.mod.io.ModelFile;
import dev.mod.io.TextFile;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.Presets;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;

/** Where a command gets its model: a model file, or a config (file or preset) initialised from a seed. */
final class ModelSource {
    @Option(names = "--model", paramLabel = "MODEL", description = "A model file (.safetensors).")
    Path model;

    @Option(names = "--config", paramLabel = "FILE", description = "A model config (JSON), initialised randomly from --seed.")
    Path config;

    @Option(names = "--preset", converter = PresetName.class, paramLabel = "NAME", description = "A built-in config: tiny, small or bench.")
    String preset;

    static ModelConfig readConfig(Path file) {
        try {
            return ModelConfig.fromJson(TextFile.read(file));
        } catch (IOException e) {
            throw new ModException("cannot read config " + file + ": " + IoErrors.describe(e), e);
        } catch (ModException e) {
            throw new ModException(file + ": " + e.getMessage(), e);
        }
    }

    /** The config to initialise from (--config or --preset). */
    ModelConfig configOrPreset() {
        return config != null ? readConfig(config) : Presets.get(preset);
    }

    Model open(long seed) {
        if (model != null) {
            return ModelFile.load(model);
        }
        return ModelInit.random(configOrPreset(), seed);
    }

    String describe(long seed) {
        if (model != null) {
            return model.toString();
        }
        return (config != null ? config.toString() : "preset " + preset) + ", seed " + seed;
    }
}
