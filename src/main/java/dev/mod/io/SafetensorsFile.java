package dev.mod.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mod.ModException;
import dev.mod.StrictJson;
import dev.mod.model.DType;
import dev.mod.model.Tensor;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A safetensors file, memory-mapped and validated: an 8-byte little-endian header length, a JSON
 * header naming each tensor's dtype, shape and byte range, then the data. Tensors are views of the
 * mapping; closing the file unmaps them.
 */
public final class SafetensorsFile implements AutoCloseable {
    /** The reference implementation refuses headers above 100 MB; so do we. */
    private static final long MAX_HEADER = 100L << 20;
    private static final ObjectMapper JSON = StrictJson.mapper();

    private final Arena arena;
    private final Map<String, String> metadata;
    private final Map<String, Tensor> tensors;

    private SafetensorsFile(Arena arena, Map<String, String> metadata, Map<String, Tensor> tensors) {
        this.arena = arena;
        this.metadata = Collections.unmodifiableMap(metadata);
        this.tensors = Collections.unmodifiableMap(tensors);
    }

    public static SafetensorsFile open(Path path) {
        if (Files.isDirectory(path)) {
            throw new ModException("cannot read " + path + ": it is a directory, not a safetensors file");
        }
        Arena arena = Arena.ofShared();
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            MemorySegment file = channel.size() == 0
                    ? MemorySegment.NULL.reinterpret(0)
                    : channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size(), arena);
            return parse(path, file, arena);
        } catch (IOException e) {
            arena.close();
            throw new ModException("cannot read " + path + ": " + IoErrors.describe(e), e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private static SafetensorsFile parse(Path path, MemorySegment file, Arena arena) {
        String where = path.toString();
        long size = file.byteSize();
        if (size < 8) {
            throw new ModException(where + ": truncated safetensors file (" + size + " bytes, no header length)");
        }
        long headerLength = file.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
        if (headerLength < 2 || headerLength > MAX_HEADER) {
            throw new ModException(where + ": corrupt safetensors file (header length " + Long.toUnsignedString(headerLength) + ")");
        }
        if (headerLength > size - 8) {
            throw new ModException(where + ": truncated safetensors file (header of " + headerLength
                    + " bytes, file of " + size + ")");
        }
        JsonNode header = parseHeader(where, file.asSlice(8, headerLength).toArray(ValueLayout.JAVA_BYTE));
        MemorySegment buffer = file.asSlice(8 + headerLength);

        Map<String, String> metadata = new LinkedHashMap<>();
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        List<long[]> ranges = new ArrayList<>();
        List<String> rangeNames = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> entry = it.next();
            String name = entry.getKey();
            JsonNode info = entry.getValue();
            if (name.equals("__metadata__")) {
                readMetadata(where, info, metadata);
                continue;
            }
            String at = where + ": tensor " + name;
            if (!info.isObject() || !info.path("dtype").isTextual() || !info.path("shape").isArray()
                    || !info.path("data_offsets").isArray() || info.path("data_offsets").size() != 2) {
                throw new ModException(at + ": header entry needs dtype, shape and data_offsets [begin, end]");
            }
            DType dtype = DType.parse(info.get("dtype").textValue(), at);
            long[] shape = new long[info.get("shape").size()];
            for (int i = 0; i < shape.length; i++) {
                shape[i] = nonNegative(at, "shape", info.get("shape").get(i));
            }
            long begin = nonNegative(at, "data_offsets", info.get("data_offsets").get(0));
            long end = nonNegative(at, "data_offsets", info.get("data_offsets").get(1));
            if (begin > end) {
                throw new ModException(at + ": data_offsets [" + begin + ", " + end + "] run backwards");
            }
            if (end > buffer.byteSize()) {
                throw new ModException(at + ": data_offsets [" + begin + ", " + end + "] point outside the file"
                        + " (data section of " + buffer.byteSize() + " bytes; truncated?)");
            }
            long expected;
            try {
                expected = Math.multiplyExact(Tensor.numel(shape), dtype.bytes());
            } catch (ArithmeticException e) {
                throw new ModException(at + ": shape is too large");
            }
            if (end - begin != expected) {
                throw new ModException(at + ": " + (end - begin) + " bytes for shape " + java.util.Arrays.toString(shape)
                        + " of " + dtype + " (needs " + expected + ")");
            }
            ranges.add(new long[] {begin, end});
            rangeNames.add(name);
            tensors.put(name, new Tensor(name, dtype, shape, buffer.asSlice(begin, end - begin)));
        }
        checkNoOverlap(where, ranges, rangeNames);
        return new SafetensorsFile(arena, metadata, tensors);
    }

    private static JsonNode parseHeader(String where, byte[] bytes) {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(java.nio.ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new ModException(where + ": corrupt safetensors header (not UTF-8)");
        }
        try {
            JsonNode node = JSON.readTree(text);
            if (node == null || !node.isObject()) {
                throw new ModException(where + ": corrupt safetensors header (not a JSON object)");
            }
            return node;
        } catch (JsonProcessingException e) {
            throw new ModException(where + ": corrupt safetensors header (invalid JSON: " + e.getOriginalMessage() + ")");
        }
    }

    private static void readMetadata(String where, JsonNode info, Map<String, String> metadata) {
        if (!info.isObject()) {
            throw new ModException(where + ": __metadata__ must be an object of strings");
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = info.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> m = it.next();
            if (!m.getValue().isTextual()) {
                throw new ModException(where + ": __metadata__ value \"" + m.getKey() + "\" is not a string");
            }
            metadata.put(m.getKey(), m.getValue().textValue());
        }
    }

    private static long nonNegative(String at, String field, JsonNode value) {
        if (!value.isIntegralNumber() || !value.canConvertToLong() || value.longValue() < 0) {
            throw new ModException(at + ": " + field + " must hold non-negative integers, got " + value);
        }
        return value.longValue();
    }

    private static void checkNoOverlap(String where, List<long[]> ranges, List<String> names) {
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < ranges.size(); i++) {
            if (ranges.get(i)[1] > ranges.get(i)[0]) {
                order.add(i);
            }
        }
        order.sort(Comparator.comparingLong(i -> ranges.get(i)[0]));
        for (int j = 1; j < order.size(); j++) {
            long[] prev = ranges.get(order.get(j - 1));
            long[] cur = ranges.get(order.get(j));
            if (cur[0] < prev[1]) {
                throw new ModException(where + ": tensors " + names.get(order.get(j - 1)) + " and "
                        + names.get(order.get(j)) + " overlap in the file");
            }
        }
    }

    public Map<String, String> metadata() {
        return metadata;
    }

    public Map<String, Tensor> tensors() {
        return tensors;
    }

    public Tensor tensor(String name) {
        Tensor t = tensors.get(name);
        if (t == null) {
            throw new ModException("no tensor " + name + " in the file");
        }
        return t;
    }

    @Override
    public void close() {
        arena.close();
    }
}
