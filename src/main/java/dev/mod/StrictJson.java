package dev.mod;

import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.util.Iterator;

/**
 * The JSON reader for every file the project reads (configs, safetensors headers and their metadata, run
 * settings): a key given twice and anything after the JSON value are errors, not "the last one wins" and
 * "ignored".
 */
public final class StrictJson {
    private StrictJson() {
    }

    /**
     * The first top-level field (in mine's order) whose value differs in theirs, as "name: A here, B there" (values
     * cut at 80 characters); null when none differs. Says which setting a refused resume or folder is about.
     */
    public static String firstDifference(JsonNode mine, JsonNode theirs, String here, String there) {
        for (Iterator<String> names = mine.fieldNames(); names.hasNext(); ) {
            String name = names.next();
            if (!mine.get(name).equals(theirs.get(name))) {
                return name + ": " + clip(mine.get(name)) + " " + here + ", " + clip(theirs.get(name)) + " " + there;
            }
        }
        return null;
    }

    private static String clip(JsonNode value) {
        String text = String.valueOf(value);
        return text.length() <= 80 ? text : text.substring(0, 80) + "...";
    }

    /** A new mapper with the strict reading rules (callers may add their own writing features). */
    public static ObjectMapper mapper() {
        return JsonMapper.builder()
                .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
                .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
                .build();
    }
}
