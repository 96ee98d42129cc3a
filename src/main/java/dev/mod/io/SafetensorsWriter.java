package dev.mod.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mod.model.Tensor;

import java.io.IOException;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** Writes tensors as a safetensors file, atomically (temporary name, then rename). */
public final class SafetensorsWriter {
    private static final ObjectMapper JSON = new ObjectMapper();

    private SafetensorsWriter() {
    }

    /** Tensors are written in the given order, with their stored dtype; metadata goes under __metadata__. */
    public static void write(Path path, Map<String, String> metadata, List<Tensor> tensors) {
        byte[] header = header(metadata, tensors);
        AtomicFiles.write(path, out -> {
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length).array());
            out.write(header);
            byte[] chunk = new byte[1 << 20];
            for (Tensor t : tensors) {
                copy(t.data(), out, chunk);
            }
        });
    }

    private static byte[] header(Map<String, String> metadata, List<Tensor> tensors) {
        ObjectNode root = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = root.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (Tensor t : tensors) {
            ObjectNode entry = root.putObject(t.name());
            entry.put("dtype", t.dtype().name());
            ArrayNode shape = entry.putArray("shape");
            for (long s : t.shape()) {
                shape.add(s);
            }
            long end = offset + t.data().byteSize();
            entry.putArray("data_offsets").add(offset).add(end);
            offset = end;
        }
        String json;
        try {
            json = JSON.writeValueAsString(root);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
        // Pad with spaces so that the data starts 8-byte aligned, as the reference writer does.
        StringBuilder padded = new StringBuilder(json);
        while ((8 + padded.length()) % 8 != 0) {
            padded.append(' ');
        }
        return padded.toString().getBytes(StandardCharsets.UTF_8);
    }

    /** Writes a tensor's bytes through a chunk of heap (the data may be a file mapping). */
    static void copy(MemorySegment data, OutputStream out, byte[] chunk) throws IOException {
        long size = data.byteSize();
        for (long pos = 0; pos < size; pos += chunk.length) {
            int n = (int) Math.min(chunk.length, size - pos);
            MemorySegment.copy(data, ValueLayout.JAVA_BYTE, pos, chunk, 0, n);
            out.write(chunk, 0, n);
        }
    }
}
