package dev.mod;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MapperFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.cfg.CoercionAction;
import com.fasterxml.jackson.databind.cfg.CoercionInputShape;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.type.LogicalType;

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

    /**
     * A new mapper with the strict reading rules (callers may add their own writing features): besides the above, a
     * value of the wrong kind is an error, not coerced ("16" or 16.5 for an integer, 1 for a flag, null for a number).
     */
    public static ObjectMapper mapper() {
        ObjectMapper mapper = JsonMapper.builder()
                .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
                .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
                .disable(DeserializationFeature.ACCEPT_FLOAT_AS_INT)
                .enable(DeserializationFeature.FAIL_ON_NULL_FOR_PRIMITIVES)
                .disable(MapperFeature.ALLOW_COERCION_OF_SCALARS)
                .build();
        mapper.coercionConfigDefaults().setCoercion(CoercionInputShape.String, CoercionAction.Fail)
                .setCoercion(CoercionInputShape.Integer, CoercionAction.Fail)
                .setCoercion(CoercionInputShape.Float, CoercionAction.Fail)
                .setCoercion(CoercionInputShape.Boolean, CoercionAction.Fail);
        mapper.coercionConfigFor(LogicalType.Float).setCoercion(CoercionInputShape.Integer, CoercionAction.TryConvert);
        mapper.coercionConfigFor(LogicalType.Textual).setCoercion(CoercionInputShape.String, CoercionAction.TryConvert);
        return mapper;
    }

    /**
     * A value of the given type from JSON, or one line saying what is wrong with it: the value's own complaint (a record's
     * check), else where in the document and what Jackson found, without Jackson's names for Java types. A null document
     * is refused too.
     */
    public static <T> T read(ObjectMapper mapper, String json, Class<T> type, String what) {
        T value;
        try {
            value = mapper.readValue(json, type);
        } catch (JsonProcessingException e) {
            throw new ModException(what + ": " + describe(e), e);
        }
        if (value == null) {
            throw new ModException(what + ": null, where a JSON object belongs");
        }
        return value;
    }

    private static String describe(JsonProcessingException e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof ModException m) {
                return m.getMessage();
            }
        }
        String message = e.getOriginalMessage().lines().findFirst().orElse("")
                .replaceAll("\\s*\\((?:but could if|token) [^)]*\\)", "")
                .replaceAll("(?:[a-z_][\\w]*\\.)+([A-Z][\\w$]*)", "$1").replace('$', '.').replace("`", "");
        if (e instanceof JsonMappingException m && !m.getPath().isEmpty()) {
            StringBuilder at = new StringBuilder();
            for (JsonMappingException.Reference r : m.getPath()) {
                at.append(r.getFieldName() != null ? (at.isEmpty() ? "" : ".") + r.getFieldName() : "[" + r.getIndex() + "]");
            }
            return at + ": " + message;
        }
        return message;
    }
}
