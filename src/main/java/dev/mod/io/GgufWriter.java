package dev.mod.io;

import dev.mod.ModException;
import dev.mod.model.DType;
import dev.mod.model.Tensor;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A GGUF file, version 3, as ggml's specification (docs/gguf.md of ggml-org/ggml) lays it out, little-endian:
 * the magic "GGUF", the version, the tensor and metadata counts, the metadata (key, value type, value), the tensor
 * infos (name, dimensions innermost first, ggml type, offset into the data), padding to the alignment, then each
 * tensor's data at its offset, every offset a multiple of the alignment. Written atomically.
 */
public final class GgufWriter {
    public static final int MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
    public static final int VERSION = 3;
    /** general.alignment's default, which this writer keeps (and so does not write the key). */
    public static final int ALIGNMENT = 32;

    /** Metadata value types, by their number in the specification. */
    public static final int UINT32 = 4;
    public static final int INT32 = 5;
    public static final int FLOAT32 = 6;
    public static final int BOOL = 7;
    public static final int STRING = 8;
    public static final int ARRAY = 9;

    /** ggml tensor types, by their number in ggml.h. */
    public static final int GGML_F32 = 0;
    public static final int GGML_F16 = 1;
    public static final int GGML_BF16 = 30;

    private record Value(int type, Object value, int elementType) {
    }

    private final Map<String, Value> metadata = new LinkedHashMap<>();
    private final List<Tensor> tensors = new ArrayList<>();
    private final List<String> names = new ArrayList<>();

    public GgufWriter putString(String key, String value) {
        return put(key, new Value(STRING, value, -1));
    }

    public GgufWriter putUint32(String key, int value) {
        if (value < 0) {
            throw new IllegalArgumentException(key + ": " + value + " is not a uint32");
        }
        return put(key, new Value(UINT32, value, -1));
    }

    public GgufWriter putFloat32(String key, float value) {
        return put(key, new Value(FLOAT32, value, -1));
    }

    public GgufWriter putBool(String key, boolean value) {
        return put(key, new Value(BOOL, value, -1));
    }

    public GgufWriter putStrings(String key, List<String> values) {
        return put(key, new Value(ARRAY, List.copyOf(values), STRING));
    }

    public GgufWriter putInt32s(String key, int[] values) {
        return put(key, new Value(ARRAY, values.clone(), INT32));
    }

    private GgufWriter put(String key, Value value) {
        if (metadata.putIfAbsent(key, value) != null) {
            throw new IllegalArgumentException("GGUF key " + key + " given twice");
        }
        return this;
    }

    /** A tensor under a GGUF name; its shape [rows, columns] becomes ggml's dimensions [columns, rows]. */
    public GgufWriter addTensor(String name, Tensor t) {
        if (names.contains(name)) {
            throw new IllegalArgumentException("GGUF tensor " + name + " given twice");
        }
        ggmlType(t.dtype());
        names.add(name);
        tensors.add(t);
        return this;
    }

    public static int ggmlType(DType type) {
        return switch (type) {
            case F32 -> GGML_F32;
            case F16 -> GGML_F16;
            case BF16 -> GGML_BF16;
            case I32 -> throw new ModException("GGUF: integer tensors have no place in a llama model");
        };
    }

    public void write(Path path) {
        Header header = new Header();
        header.u32(MAGIC);
        header.u32(VERSION);
        header.u64(tensors.size());
        header.u64(metadata.size());
        metadata.forEach((key, v) -> {
            header.string(key);
            header.u32(v.type());
            if (v.type() == ARRAY) {
                header.u32(v.elementType());
                if (v.elementType() == STRING) {
                    List<?> strings = (List<?>) v.value();
                    header.u64(strings.size());
                    strings.forEach(s -> header.string((String) s));
                } else {
                    int[] ints = (int[]) v.value();
                    header.u64(ints.length);
                    for (int i : ints) {
                        header.u32(i);
                    }
                }
            } else {
                header.scalar(v.type(), v.value());
            }
        });
        long offset = 0;
        long[] offsets = new long[tensors.size()];
        for (int i = 0; i < tensors.size(); i++) {
            Tensor t = tensors.get(i);
            header.string(names.get(i));
            header.u32(t.rank());
            for (int d = t.rank() - 1; d >= 0; d--) {
                header.u64(t.dim(d));
            }
            header.u32(ggmlType(t.dtype()));
            offsets[i] = offset;
            header.u64(offset);
            offset = align(offset + t.data().byteSize());
        }
        byte[] head = header.bytes();
        AtomicFiles.write(path, out -> {
            out.write(head);
            long written = head.length;
            written = pad(out, written);
            long dataStart = written;
            byte[] chunk = new byte[1 << 20];
            for (int i = 0; i < tensors.size(); i++) {
                if (written - dataStart != offsets[i]) {
                    throw new IllegalStateException("GGUF offsets out of step");
                }
                SafetensorsWriter.copy(tensors.get(i).data(), out, chunk);
                written += tensors.get(i).data().byteSize();
                if (i < tensors.size() - 1) {
                    written = pad(out, written);
                }
            }
        });
    }

    static long align(long n) {
        return (n + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    }

    private static long pad(OutputStream out, long written) throws IOException {
        long aligned = align(written);
        out.write(new byte[(int) (aligned - written)]);
        return aligned;
    }

    /** The header in memory: it is small (the vocabulary's strings are its largest part). */
    private static final class Header {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();
        private final ByteBuffer scratch = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);

        void u32(int v) {
            out.write(scratch.clear().putInt(v).array(), 0, 4);
        }

        void u64(long v) {
            out.write(scratch.clear().putLong(v).array(), 0, 8);
        }

        void string(String s) {
            byte[] utf8 = s.getBytes(StandardCharsets.UTF_8);
            u64(utf8.length);
            out.write(utf8, 0, utf8.length);
        }

        void scalar(int type, Object value) {
            switch (type) {
                case UINT32 -> u32((Integer) value);
                case FLOAT32 -> u32(Float.floatToRawIntBits((Float) value));
                case BOOL -> out.write((Boolean) value ? 1 : 0);
                case STRING -> string((String) value);
                default -> throw new IllegalStateException("GGUF value type " + type);
            }
        }

        byte[] bytes() {
            return out.toByteArray();
        }
    }
}
