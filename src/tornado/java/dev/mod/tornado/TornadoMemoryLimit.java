package dev.mod.tornado;

import dev.mod.ModException;

import java.util.Locale;

/**
 * TornadoVM's own cap on the device memory of a process, tornado.device.memory (4 GB unless set; read once,
 * when its runtime starts). scripts/tornado-options lifts it, so that the device's own memory is what bounds a plan.
 */
final class TornadoMemoryLimit {
    static final String PROPERTY = "tornado.device.memory";
    private static final long DEFAULT = 4L << 30;

    private TornadoMemoryLimit() {
    }

    /** The limit in bytes as TornadoVM reads it: a number with an optional KB, MB or GB. */
    static long bytes() {
        String value = System.getProperty(PROPERTY);
        if (value == null) {
            return DEFAULT;
        }
        String v = value.trim().toUpperCase(Locale.ROOT);
        long unit = 1;
        for (String[] suffix : new String[][] {{"GB", "1073741824"}, {"MB", "1048576"}, {"KB", "1024"}}) {
            if (v.endsWith(suffix[0])) {
                unit = Long.parseLong(suffix[1]);
                v = v.substring(0, v.length() - 2).trim();
                break;
            }
        }
        try {
            return Math.multiplyExact(Long.parseLong(v), unit);
        } catch (NumberFormatException | ArithmeticException e) {
            throw new ModException(PROPERTY + "=" + value + ": expected a size such as 8GB or 512MB");
        }
    }
}
