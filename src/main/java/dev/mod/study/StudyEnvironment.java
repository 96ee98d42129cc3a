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

    /** The CPU's model name (/proc/cpuinfo), else the architecture. */
    public static String cpuModel() {
        try {
            return Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name"))
                    .findFirst().map(l -> l.substring(l.indexOf(':') + 1).trim()).orElse(System.getProperty("os.arch"));
        } catch (IOException e) {
            return System.getProperty("os.arch");
        }
    }
}
