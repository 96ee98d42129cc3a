package dev.mod.sweep;

import com.fasterxml.jackson.annotation.JsonIgnore;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.mod.ModException;
import dev.mod.StrictJson;
import dev.mod.io.AtomicFiles;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * What a finished sweep run measured, written as result.json in its folder (the mark that the run is done).
 * Losses are mean cross-entropies in nats per byte over the spec's held-out windows, the same windows for every
 * run: eval_loss with top-k routing as trained (random scores for a stochastic run), eval_loss_router and
 * eval_loss_predictor with the causal rules of generation (null where the run has no such rule). Agreements
 * and routed fractions are means over the routed layers. Step times and tokens/s are medians over the run's steps,
 * on the machine and thread count named (a resumed run's steps may come from two machines).
 */
@JsonInclude(JsonInclude.Include.ALWAYS)
public record SweepResult(
        @JsonProperty("name") String name,
        @JsonProperty("variant") String variant,
        @JsonProperty("budget") double budget,
        @JsonProperty("size") String size,
        @JsonProperty("dim") int dim,
        @JsonProperty("n_layers") int nLayers,
        @JsonProperty("capacity") Double capacity,
        @JsonProperty("routed_layers") List<Integer> routedLayers,
        @JsonProperty("routing") String routing,
        @JsonProperty("params") long params,
        @JsonProperty("steps") int steps,
        @JsonProperty("lr") double lr,
        @JsonProperty("train_flops") double trainFlops,
        @JsonProperty("forward_flops") double forwardFlops,
        @JsonProperty("eval_loss") double evalLoss,
        @JsonProperty("eval_loss_router") Double evalLossRouter,
        @JsonProperty("eval_loss_predictor") Double evalLossPredictor,
        @JsonProperty("routed_fraction_router") Double routedFractionRouter,
        @JsonProperty("routed_fraction_predictor") Double routedFractionPredictor,
        @JsonProperty("router_agreement") Double routerAgreement,
        @JsonProperty("predictor_agreement") Double predictorAgreement,
        @JsonProperty("step_ms") double stepMs,
        @JsonProperty("tokens_per_s") double tokensPerSecond,
        @JsonProperty("train_seconds") double trainSeconds,
        @JsonProperty("threads") int threads,
        @JsonProperty("cpu") String cpu,
        @JsonProperty("device") String device) {

    private static final ObjectMapper JSON = StrictJson.mapper()
            .enable(DeserializationFeature.FAIL_ON_MISSING_CREATOR_PROPERTIES)
            .enable(SerializationFeature.INDENT_OUTPUT);

    static final String FILE = "result.json";

    @JsonIgnore
    public boolean dense() {
        return capacity == null;
    }

    @JsonIgnore
    public boolean isoFlop() {
        return variant.equals("dense") || variant.equals("mod");
    }

    void write(Path dir) {
        AtomicFiles.write(dir.resolve(FILE), out -> out.write(JSON.writeValueAsString(this).getBytes(StandardCharsets.UTF_8)));
    }

    /** The result in a run folder, or null when the run has not finished. */
    static SweepResult read(Path dir) {
        Path file = dir.resolve(FILE);
        if (!Files.exists(file)) {
            return null;
        }
        try {
            return JSON.readValue(Files.readString(file, StandardCharsets.UTF_8), SweepResult.class);
        } catch (JsonProcessingException e) {
            throw new ModException(file + ": not a sweep result: " + e.getOriginalMessage().lines().findFirst().orElse(""), e);
        } catch (IOException e) {
            throw new ModException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }
}
