package dev.mod.study;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** What a study ran on, recorded with its results so that studies from different machines can be compared. */
public final class StudyEnvironment {
    private StudyEnvironment() {
    }

    public static Map<String, Object> capture(List<StudyDevice> devices) {
        Map<String, Object> env = new LinkedHashMap<>();
        env.put("created", Instant.now().toString());
        env.put("project_version", projectVersion());
        env.put("git_commit", gitCommit());
        env.put("cpu", cpuModel());
        env.put("cores", Runtime.getRuntime().availableProcessors());
        env.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version") + " " + System.getProperty("os.arch"));
        env.put("jvm", System.getProperty("java.vm.name") + " " + System.getProperty("java.runtime.version")
                + " (" + System.getProperty("java.vendor") + ")");
        env.put("jvm_flags", ManagementFactory.getRuntimeMXBean().getInputArguments());
        env.put("max_heap_bytes", Runtime.getRuntime().maxMemory());
        Map<String, String> deviceInfo = new LinkedHashMap<>();
        devices.forEach(d -> deviceInfo.put(d.id(), d.description()));
        env.put("devices", deviceInfo);
        return env;
    }

    private static String projectVersion() {
        String v = StudyEnvironment.class.getPackage().getImplementationVersion();
        return v == null ? "development build" : v;
    }

    private static String gitCommit() {
        try {
            Process p = new ProcessBuilder("git", "rev-parse", "HEAD").redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes()).trim();
            if (p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0) {
                Process dirty = new ProcessBuilder("git", "status", "--porcelain", "--untracked-files=no").start();
                boolean clean = new String(dirty.getInputStream().readAllBytes()).isBlank();
                return clean ? out : out + " (with uncommitted changes)";
            }
        } catch (IOException e) {
            return "unknown (git: " + e.getMessage() + ")";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return "unknown (not a git checkout)";
    }

    /**
     * The CPU's model name (/proc/cpuinfo) with its family and model numbers where it gives them (a virtual machine's
     * name is often only "AMD EPYC", and the family says which generation ran), else the architecture.
     */
    public static String cpuModel() {
        try {
            String described = describeCpu(Files.readAllLines(Path.of("/proc/cpuinfo")));
            return described != null ? described : System.getProperty("os.arch");
        } catch (IOException e) {
            return System.getProperty("os.arch");
        }
    }

    // "NAME (family F, model M)" from /proc/cpuinfo's lines, or NAME alone, or null where it names no model
    static String describeCpu(List<String> cpuinfo) {
        String name = field(cpuinfo, "model name");
        if (name == null) {
            return null;
        }
        String family = field(cpuinfo, "cpu family");
        String model = field(cpuinfo, "model");
        return family == null || model == null ? name : name + " (family " + family + ", model " + model + ")";
    }

    // the value of the first "key : value" line of /proc/cpuinfo whose key is exactly `key`
    private static String field(List<String> lines, String key) {
        for (String line : lines) {
            int colon = line.indexOf(':');
            if (colon > 0 && line.substring(0, colon).trim().equals(key)) {
                return line.substring(colon + 1).trim();
            }
        }
        return null;
    }
}
