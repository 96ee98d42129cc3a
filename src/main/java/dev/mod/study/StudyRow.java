package dev.mod.study;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;

/**
 * One measurement of a study: a device, a sequence length, and the dense model or the MoD model at one
 * capacity. Times are prefill forward passes over B sequences of T tokens, in milliseconds; decode holds
 * the decode steps at context T (null when the study measured none). A row whose device failed carries the
 * error and no figures.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record StudyRow(
        @JsonProperty("device") String device,
        @JsonProperty("capacity") Double capacity,
        @JsonProperty("seq_len") int seqLen,
        @JsonProperty("batch") int batch,
        @JsonProperty("flops") double flops,
        @JsonProperty("ideal_speedup") double idealSpeedup,
        @JsonProperty("median_ms") Double medianMs,
        @JsonProperty("min_ms") Double minMs,
        @JsonProperty("max_ms") Double maxMs,
        @JsonProperty("speedup") Double speedup,
        @JsonProperty("efficiency") Double efficiency,
        @JsonProperty("tokens_per_s") Double tokensPerSecond,
        @JsonProperty("kv_cache_bytes") double kvCacheBytes,
        @JsonProperty("host_device_bytes") Long hostDeviceBytes,
        @JsonProperty("peak_heap_bytes") Long peakHeapBytes,
        @JsonProperty("routing_checksum") String routingChecksum,
        @JsonProperty("error") String error,
        @JsonProperty("decode") StudyDecode decode) {

    /** "dense" or the capacity, as the CLI takes it. */
    public String capacityLabel() {
        return capacity == null ? "dense" : capacity.toString();
    }

    /** Identifies the row within a study, for --resume. */
    public String key() {
        return device + "|" + seqLen + "|" + capacityLabel();
    }

    public boolean failed() {
        return error != null;
    }
}
