package dev.mod.study;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.JsonNode;
import dev.mod.model.ModelConfig;

import java.util.List;

/**
 * What a study measures: the model (a preset or a model file, its config and seed), the capacities and
 * sequence lengths, the devices, and how it times (batch, warm-up, repeats, decode steps per timed run;
 * 0 decode steps: no decode measurement). Two runs with equal settings build the same models and make the
 * same routing decisions; only the timings differ.
 */
public record StudySettings(
        @JsonProperty("model") String model,
        @JsonProperty("model_config") JsonNode modelConfig,
        @JsonProperty("seed") long seed,
        @JsonProperty("capacities") List<Double> capacities,
        @JsonProperty("seq_lens") List<Integer> seqLens,
        @JsonProperty("batch") int batch,
        @JsonProperty("devices") List<String> devices,
        @JsonProperty("warmup_seconds") double warmupSeconds,
        @JsonProperty("repeats") int repeats,
        @JsonProperty("decode_steps") int decodeSteps) {

    public ModelConfig config() {
        return ModelConfig.fromJson(modelConfig.toString());
    }
}
