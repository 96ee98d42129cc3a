package dev.mod.study;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.mod.ModException;
import dev.mod.io.AtomicFiles;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A study's results file (study.json): the settings and environment needed to reproduce and compare it,
 * and its rows. Schema version 2 (version 1 had no decode figures and is still read); the README documents
 * every field. Written atomically after every row, so an interrupted study leaves a valid file with the
 * rows finished so far.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record StudyFile(
        @JsonProperty("schema") int schema,
        @JsonProperty("settings") StudySettings settings,
        @JsonProperty("environment") Map<String, Object> environment,
        @JsonProperty("rows") List<StudyRow> rows) {

    public static final int SCHEMA = 2;
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    public static StudyFile read(Path path) {
        try {
            StudyFile file = JSON.readValue(path.toFile(), StudyFile.class);
            if (file.schema() < 1 || file.schema() > SCHEMA) {
                throw new ModException(path + ": study schema " + file.schema() + ", this build reads 1 to " + SCHEMA);
            }
            return file;
        } catch (IOException e) {
            throw new ModException("cannot read study " + path + ": " + e.getMessage().lines().findFirst().orElse(""), e);
        }
    }

    public void write(Path path) {
        AtomicFiles.write(path, out -> out.write(JSON.writeValueAsBytes(this)));
    }

    /** The rows as CSV, one line each, the columns of the JSON rows. */
    public void writeCsv(Path path) {
        AtomicFiles.write(path, out -> {
            PrintWriter w = new PrintWriter(new java.io.OutputStreamWriter(out, StandardCharsets.UTF_8));
            w.println("device,capacity,seq_len,batch,flops,ideal_speedup,median_ms,min_ms,max_ms,speedup,efficiency,"
                    + "tokens_per_s,kv_cache_bytes,host_device_bytes,peak_heap_bytes,routing_checksum,error,"
                    + "decode_median_ms,decode_min_ms,decode_max_ms,decode_speedup,decode_tokens_per_s,"
                    + "decode_routed_fraction,decode_kv_cache_bytes,decode_dense_kv_cache_bytes,decode_error");
            for (StudyRow r : rows) {
                w.println(String.join(",", csv(r.device()), r.capacityLabel(), Integer.toString(r.seqLen()),
                        Integer.toString(r.batch()), number(r.flops()), number(r.idealSpeedup()), number(r.medianMs()),
                        number(r.minMs()), number(r.maxMs()), number(r.speedup()), number(r.efficiency()),
                        number(r.tokensPerSecond()), number(r.kvCacheBytes()), number(r.hostDeviceBytes()),
                        number(r.peakHeapBytes()), csv(r.routingChecksum()), csv(r.error()), decodeCsv(r.decode())));
            }
            w.flush();
        });
    }

    private static String decodeCsv(StudyDecode d) {
        if (d == null) {
            return ",,,,,,,,";
        }
        return String.join(",", number(d.medianMs()), number(d.minMs()), number(d.maxMs()), number(d.speedup()),
                number(d.tokensPerSecond()), number(d.routedFraction()), number(d.kvCacheBytes()),
                number(d.denseKvCacheBytes()), csv(d.error()));
    }

    private static String number(Number n) {
        return n == null ? "" : String.format(Locale.ROOT, "%s", n);
    }

    private static String csv(String s) {
        if (s == null) {
            return "";
        }
        return s.contains(",") || s.contains("\"") ? "\"" + s.replace("\"", "\"\"") + "\"" : s;
    }
}
