package dev.mod.tornado;

import dev.mod.ModException;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Predicate;

/**
 * What tornado-config says about a plan's tasks (JVM properties, one -Dkey=value per line of
 * tornado-config/*.properties): the device of the whole plan, the matrix-product layout and work-group size
 * of a product task, and TornadoVM's own per-task properties, each checked against the plan's graphs and
 * tasks so that a typo or a setting TornadoVM would trip over is one line naming the property.
 * <ul>
 * <li>{@code mod.tornado.device=B:D}: every graph on device B:D (TornadoVM's {@code tornado.device} takes no B:D);</li>
 * <li>{@code mod.tornado.matmul=rows|tiled|vector} for every product, {@code mod.tornado.<graph>.<task>.matmul=...}
 * for one ({@link MatmulKernels}; the default is rows on CPU devices, elsewhere vector for products of at most
 * four rows and tiled for the others);</li>
 * <li>{@code mod.tornado.<graph>.<task>.local=N}: the work-group size of a product in the rows layout (the tiled
 * layout's is fixed by its tile);</li>
 * <li>TornadoVM's {@code <graph>.<task>.device=B:D} (checked: the task and the device exist) and
 * {@code <graph>.<task>.global|local.workgroup.size} (on @Parallel tasks only: TornadoVM 5.2.1 fails inside on
 * tasks that set their own grid).</li>
 * </ul>
 */
record TornadoPlacement(String device, Map<String, String> matmul, Map<String, Integer> local) {
    static final String PREFIX = "mod.tornado.";

    /** The mod.tornado.* settings, their values checked; the task names they use are checked by {@link #check}. */
    static TornadoPlacement read(Properties properties) {
        String device = null;
        Map<String, String> matmul = new TreeMap<>();
        Map<String, Integer> local = new TreeMap<>();
        for (String key : new TreeSet<>(properties.stringPropertyNames())) {
            if (!key.startsWith(PREFIX)) {
                continue;
            }
            String value = properties.getProperty(key).trim();
            String rest = key.substring(PREFIX.length());
            if (rest.equals("device")) {
                device = value;
            } else if (rest.equals("matmul")) {
                matmul.put("*", layout(key, value));
            } else if (rest.endsWith(".matmul")) {
                matmul.put(rest.substring(0, rest.length() - ".matmul".length()), layout(key, value));
            } else if (rest.endsWith(".local")) {
                local.put(rest.substring(0, rest.length() - ".local".length()), positive(key, value));
            } else {
                throw new ModException("tornado-config: unknown setting " + key
                        + " (mod.tornado.device, mod.tornado.matmul, mod.tornado.<graph>.<task>.matmul or .local)");
            }
        }
        return new TornadoPlacement(device, matmul, local);
    }

    /**
     * Checks the settings against the plan's graphs: every per-task mod.tornado setting names a product task,
     * and TornadoVM's per-task properties on this plan's graphs name a task, a device that exists, and
     * work-group sizes only on tasks that do not set their own grid.
     */
    void check(Properties properties, List<GraphSpec> graphs) {
        Map<String, GraphSpec> byName = new TreeMap<>();
        List<String> products = new ArrayList<>();
        for (GraphSpec g : graphs) {
            byName.put(g.name, g);
            g.products.forEach(p -> products.add(g.name + "." + p));
        }
        Set<String> named = new TreeSet<>(matmul.keySet());
        named.addAll(local.keySet());
        named.remove("*");
        for (String task : named) {
            if (!products.contains(task)) {
                throw new ModException("tornado-config: " + PREFIX + task + ": no matrix-product task " + task
                        + " in this plan (products: " + String.join(", ", products.subList(0, Math.min(8, products.size())))
                        + (products.size() > 8 ? ", ..." : "") + ")");
            }
        }
        for (String key : new TreeSet<>(properties.stringPropertyNames())) {
            checkTornadoTaskProperty(key, properties.getProperty(key).trim(), byName);
        }
    }

    /**
     * The layout of a product task of the given rows: its own setting, else the plan-wide one, else by device
     * type (rows on CPU devices; elsewhere vector for at most VECTOR_ROWS rows, tiled for more) where the device's
     * work-groups fit that layout's kernel, rows where they do not.
     */
    String layoutOf(String task, boolean cpuDevice, int rows, Predicate<String> fits) {
        String chosen = matmul.getOrDefault(task, matmul.get("*"));
        if (chosen != null) {
            return chosen;
        }
        String byDevice = cpuDevice ? "rows" : rows <= MatmulKernels.VECTOR_ROWS ? "vector" : "tiled";
        return byDevice.equals("rows") || fits.test(byDevice) ? byDevice : "rows";
    }

    private static void checkTornadoTaskProperty(String key, String value, Map<String, GraphSpec> graphs) {
        for (String suffix : new String[] {".device", ".global.workgroup.size", ".local.workgroup.size"}) {
            if (!key.endsWith(suffix)) {
                continue;
            }
            String name = key.substring(0, key.length() - suffix.length());
            if (!suffix.equals(".device") && !value.matches("[1-9][0-9]{0,8}(,[1-9][0-9]{0,8}){0,2}")) {
                // TornadoVM would take 0 (a division by zero inside the OpenCL driver) or fail on a non-number
                throw new ModException("tornado-config: " + key + "=" + value
                        + ": work-group sizes are one to three positive integers separated by commas");
            }
            int dot = name.indexOf('.');
            GraphSpec graph = dot < 0 ? null : graphs.get(name.substring(0, dot));
            if (graph == null && dot > 0 && name.substring(0, dot).matches("layer[0-9]+")) {
                throw new ModException("tornado-config: " + key + ": this plan has no graph " + name.substring(0, dot) + " (graphs: "
                        + String.join(", ", graphs.keySet()) + ")");
            }
            if (graph == null) {
                return; // not one of this plan's graphs: another program's setting
            }
            String task = name.substring(dot + 1);
            if (!graph.taskNames.contains(task)) {
                throw new ModException("tornado-config: " + key + ": graph " + graph.name + " has no task " + task
                        + " (tasks: " + String.join(", ", graph.taskNames) + ")");
            }
            if (suffix.equals(".device")) {
                TornadoDevices.device(value, "tornado-config: " + key);
            } else if (graph.grids.containsKey(task)) {
                throw new ModException("tornado-config: " + key + ": " + name + " sets its own work-groups, which TornadoVM "
                        + "cannot override" + (graph.products.contains(task) ? "; use " + PREFIX + name + ".local=N" : ""));
            }
            return;
        }
    }

    private static String layout(String key, String value) {
        if (!value.equals("rows") && !value.equals("tiled") && !value.equals("vector")) {
            throw new ModException("tornado-config: " + key + "=" + value + ": the layouts are rows, tiled and vector");
        }
        return value;
    }

    private static int positive(String key, String value) {
        try {
            int n = Integer.parseInt(value);
            if (n >= 1 && n <= 1024) {
                return n;
            }
        } catch (NumberFormatException e) {
            // reported below
        }
        throw new ModException("tornado-config: " + key + "=" + value + ": a work-group size is a whole number from 1 to 1024");
    }
}
