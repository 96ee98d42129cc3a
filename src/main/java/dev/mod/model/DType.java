package dev.mod.model;

import dev.mod.ModException;

/** Element types of stored tensors, named as in the safetensors format. */
public enum DType {
    F32(4), F16(2), BF16(2), I32(4);

    private final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    public int bytes() {
        return bytes;
    }

    public boolean isFloat() {
        return this != I32;
    }

    public static DType parse(String name, String where) {
        for (DType t : values()) {
            if (t.name().equals(name)) {
                return t;
            }
        }
        throw new ModException(where + ": unsupported dtype \"" + name + "\" (supported: F32, F16, BF16, I32)");
    }
}
