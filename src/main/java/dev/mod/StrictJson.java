package dev.mod;

import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;

/**
 * The JSON reader for every file the project reads (configs, safetensors headers and their metadata, run
 * settings): a key given twice and anything after the JSON value are errors, not "the last one wins" and
 * "ignored".
 */
public final class StrictJson {
    private StrictJson() {
    }

    /** A new mapper with the strict reading rules (callers may add their own writing features). */
    public static ObjectMapper mapper() {
        return JsonMapper.builder()
                .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
                .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
                .build();
    }
}
