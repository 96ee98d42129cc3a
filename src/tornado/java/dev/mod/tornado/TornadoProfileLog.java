package dev.mod.tornado;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mod.ModException;

import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Pattern;

/** TornadoVM's profile log: a JSON object per run, appended, each holding "graph.task": {"TASK_KERNEL_TIME": ns}. */
final class TornadoProfileLog {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** TornadoVM 5.2.1 leaves a comma before some closing braces; strict JSON readers reject it. */
    private static final Pattern TRAILING_COMMA = Pattern.compile(",(\\s*[}\\]])");

    private TornadoProfileLog() {
    }

    /** Kernel time per task of the graph in the log's last run, by task name. */
    static Map<String, Long> taskKernelNanos(String graph, String log) {
        Map<String, Long> times = new LinkedHashMap<>();
        String json = TRAILING_COMMA.matcher(log).replaceAll("$1");
        try (MappingIterator<JsonNode> runs = JSON.readerFor(JsonNode.class).readValues(json)) {
            JsonNode last = null;
            while (runs.hasNext()) {
                last = runs.next();
            }
            if (last != null) {
                last.path(graph).properties().forEach(e -> {
                    if (e.getValue().has("TASK_KERNEL_TIME")) {
                        times.put(e.getKey().substring(graph.length() + 1), e.getValue().get("TASK_KERNEL_TIME").asLong());
                    }
                });
            }
        } catch (IOException e) {
            throw new ModException("tornado: unreadable profile log: " + e.getMessage(), e);
        }
        return times;
    }
}
