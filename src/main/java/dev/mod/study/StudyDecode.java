package dev.mod.study;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * The decode half of a study row: steps of B sequences at context T (one new token per sequence and step,
 * causal routing with the calibrated rule set to the row's capacity), in milliseconds per step. A device
 * without a decode path carries the reason in error and no figures.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record StudyDecode(
        @JsonProperty("median_ms") Double medianMs,
        @JsonProperty("min_ms") Double minMs,
        @JsonProperty("max_ms") Double maxMs,
        @JsonProperty("speedup") Double speedup,
        @JsonProperty("tokens_per_s") Double tokensPerSecond,
        @JsonProperty("routed_fraction") Double routedFraction,
        @JsonProperty("kv_cache_bytes") Long kvCacheBytes,
        @JsonProperty("dense_kv_cache_bytes") Long denseKvCacheBytes,
        @JsonProperty("error") String error) {

    static StudyDecode failed(String error) {
        return new StudyDecode(null, null, null, null, null, null, null, null, error);
    }
}
