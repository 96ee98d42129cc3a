package dev.mod.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A GGUF reader written from ggml's specification (docs/gguf.md), independently of GgufWriter, for the tests: every
 * value type, the tensor infos, the alignment rule (general.alignment, else 32) and where the data starts.
 */
public final class GgufReader {
    public record TensorInfo(String name, long[] dims, int type, long offset) {
    }

    public final int version;
    public final Map<String, Object> metadata = new LinkedHashMap<>();
    public final List<TensorInfo> tensors = new ArrayList<>();
    public final long dataStart;
    public final int alignment;
    private final ByteBuffer file;

    public GgufReader(Path path) throws IOException {
        file = ByteBuffer.wrap(Files.readAllBytes(path)).order(ByteOrder.LITTLE_ENDIAN);
        byte[] magic = new byte[4];
        file.get(magic);
        if (!new String(magic, StandardCharsets.US_ASCII).equals("GGUF")) {
            throw new IOException("not a GGUF file: magic " + Arrays.toString(magic));
        }
        version = file.getInt();
        long tensorCount = file.getLong();
        long kvCount = file.getLong();
        for (long i = 0; i < kvCount; i++) {
            String key = string();
            if (metadata.put(key, value(file.getInt())) != null) {
                throw new IOException("key " + key + " twice");
            }
        }
        for (long i = 0; i < tensorCount; i++) {
            String name = string();
            long[] dims = new long[file.getInt()];
            for (int d = 0; d < dims.length; d++) {
                dims[d] = file.getLong();
            }
            tensors.add(new TensorInfo(name, dims, file.getInt(), file.getLong()));
        }
        Object a = metadata.get("general.alignment");
        alignment = a == null ? 32 : (Integer) a;
        dataStart = (file.position() + alignment - 1) / alignment * alignment;
    }

    /** The bytes of a tensor of the given size. */
    public byte[] data(TensorInfo t, long bytes) {
        byte[] out = new byte[Math.toIntExact(bytes)];
        file.get(Math.toIntExact(dataStart + t.offset()), out);
        return out;
    }

    public long fileSize() {
        return file.capacity();
    }

    private String string() {
        byte[] b = new byte[Math.toIntExact(file.getLong())];
        file.get(b);
        return new String(b, StandardCharsets.UTF_8);
    }

    private Object value(int type) throws IOException {
        return switch (type) {
            case 0 -> file.get() & 0xFF;
            case 1 -> (int) file.get();
            case 2 -> file.getShort() & 0xFFFF;
            case 3 -> (int) file.getShort();
            case 4, 5 -> file.getInt();
            case 6 -> file.getFloat();
            case 7 -> switch (file.get()) {
                case 0 -> false;
                case 1 -> true;
                default -> throw new IOException("a bool that is neither 0 nor 1");
            };
            case 8 -> string();
            case 9 -> {
                int elementType = file.getInt();
                long n = file.getLong();
                List<Object> list = new ArrayList<>();
                for (long i = 0; i < n; i++) {
                    list.add(value(elementType));
                }
                yield list;
            }
            case 10, 11 -> file.getLong();
            case 12 -> file.getDouble();
            default -> throw new IOException("value type " + type);
        };
    }
}
