package dev.mod.model;

import dev.mod.ModException;

import java.util.LinkedHashMap;
import java.util.Map;

/** Named model configs built into the program. */
public final class Presets {
    private static final Map<String, ModelConfig> PRESETS = new LinkedHashMap<>();

    static {
        // Small enough for hand-checkable tests: GQA, both layer kinds.
        PRESETS.put("tiny", new ModelConfig(64, 32, 2, 4, 2, 64, 1e-5, 10000, 64, 0.25,
                ModelConfig.everyOtherLayer(2), RouterWeighting.RAW));
        // The embedded default of the demo: byte vocabulary (256 bytes + BOS/EOS), runs in seconds on the reference backend.
        PRESETS.put("small", new ModelConfig(258, 128, 4, 4, 4, 352, 1e-5, 10000, 512, 0.125,
                ModelConfig.everyOtherLayer(4), RouterWeighting.RAW));
        // The benchmark model: d=512, 8 layers, every other block routed at 12.5%.
        PRESETS.put("bench", new ModelConfig(258, 512, 8, 8, 8, 1376, 1e-5, 10000, 2048, 0.125,
                ModelConfig.everyOtherLayer(8), RouterWeighting.RAW));
    }

    private Presets() {
    }

    public static ModelConfig get(String name) {
        ModelConfig config = PRESETS.get(name);
        if (config == null) {
            throw new ModException("unknown preset \"" + name + "\" (known: " + String.join(", ", PRESETS.keySet()) + ")");
        }
        return config;
    }

    public static Iterable<String> names() {
        return PRESETS.keySet();
    }
}
