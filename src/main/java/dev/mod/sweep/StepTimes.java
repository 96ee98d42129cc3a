package dev.mod.sweep;

import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.mod.ModException;
import dev.mod.StrictJson;
import dev.mod.data.TextData;
import dev.mod.data.TrainingData;
import dev.mod.io.AtomicFiles;
import dev.mod.study.StudyEnvironment;
import dev.mod.study.StudyRunner;
import dev.mod.train.Trainer;
import dev.mod.train.TrainingPass;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * Step times of a sweep's isoFLOP settings measured in one sitting (`mod sweep time`), for the wall-clock comparisons:
 * a run's own step times come from whatever else shared the machine while it trained, over hours. Each setting (variant
 * and size: a step's time does not depend on the budget) trains `steps` steps of its first run, `rounds` times, the
 * settings taking turns (the order reversed every other round, so that drift falls on dense and MoD alike). A round's
 * figure is the median step time past the first fifth of its steps (the JIT's warm-up); a setting's is the median of
 * its rounds. Written as step_times.json in the sweep's folder; the report uses it where present.
 *
 * @param stepMs each setting's figure per round, keyed "variant size" (key)
 */
public record StepTimes(@JsonProperty("steps") int steps, @JsonProperty("rounds") int rounds, @JsonProperty("threads") int threads,
                        @JsonProperty("backend") String backend, @JsonProperty("environment") Map<String, Object> environment,
                        @JsonProperty("step_ms") Map<String, List<Double>> stepMs) {
    static final String FILE = "step_times.json";
    private static final ObjectMapper JSON = StrictJson.mapper()
            .enable(DeserializationFeature.FAIL_ON_MISSING_CREATOR_PROPERTIES)
            .enable(SerializationFeature.INDENT_OUTPUT);

    static String key(String variant, String size) {
        return variant + " " + size;
    }

    /** A setting's step time in ms (the median of its rounds), or null where it was not timed. */
    public Double ms(String variant, String size) {
        List<Double> rounds = stepMs.get(key(variant, size));
        return rounds == null ? null : StudyRunner.median(rounds.stream().mapToDouble(Double::doubleValue).toArray());
    }

    /** The settings timed: the first run of each isoFLOP variant and size, in the plan's order. */
    public static List<SweepRun> settings(SweepSpec spec) {
        Map<String, SweepRun> first = new LinkedHashMap<>();
        for (SweepRun run : SweepRun.plan(spec)) {
            if (run.isoFlop()) {
                first.putIfAbsent(key(run.variant(), run.size().name()), run);
            }
        }
        return List.copyOf(first.values());
    }

    /**
     * Times every setting of the spec, each run in a scratch folder in sweepDir that is removed at the end, whatever
     * happens; progress gets a line per setting and round.
     */
    public static StepTimes measure(SweepSpec spec, Path sweepDir, int steps, int rounds, int threads, String backend,
                                    TrainingPass.Opener training, Consumer<String> progress) {
        if (steps < 5) {
            throw new ModException("--steps " + steps + ": a timing needs at least 5 steps (the first fifth is the JIT's warm-up)");
        }
        if (rounds < 1) {
            throw new ModException("--rounds " + rounds + ": give at least 1");
        }
        List<SweepRun> settings = settings(spec);
        TrainingData data = TextData.open(spec.data(), spec.seqLen(), spec.maxDataBytes());
        Map<String, List<Double>> times = new LinkedHashMap<>();
        settings.forEach(run -> times.put(key(run.variant(), run.size().name()), new ArrayList<>()));
        Path scratch = null;
        try {
            scratch = Files.createTempDirectory(sweepDir, ".step-times-");
            for (int round = 0; round < rounds; round++) {
                List<SweepRun> order = round % 2 == 1 ? settings.reversed() : settings;
                for (SweepRun run : order) {
                    Path runDir = scratch.resolve(run.variant() + "-" + run.size().name() + "-" + round);
                    double ms = timeOne(spec, run, data, runDir, steps, training);
                    times.get(key(run.variant(), run.size().name())).add(ms);
                    progress.accept(String.format(Locale.ROOT, "round %d/%d  %-8s %-10s %8.2f ms a step", round + 1, rounds,
                            run.variant(), run.size().name(), ms));
                }
            }
        } catch (IOException e) {
            throw new ModException("cannot make a scratch folder in " + sweepDir + ": " + e.getMessage(), e);
        } finally {
            delete(scratch);
        }
        return new StepTimes(steps, rounds, threads, backend, StudyEnvironment.capture(List.of()), times);
    }

    // the median step time of `steps` steps of the run's model past the first fifth, trained in runDir
    private static double timeOne(SweepSpec spec, SweepRun run, TrainingData data, Path runDir, int steps,
                                  TrainingPass.Opener training) {
        double[] ms = new double[steps];
        double tokens = (double) spec.batch() * spec.seqLen();
        new Trainer(run.timingSettings(spec, steps), data, runDir, training)
                .run(false, p -> ms[(int) p.step() - 1] = 1000 * tokens / p.tokensPerSecond());
        return StudyRunner.median(Arrays.copyOfRange(ms, steps / 5, steps));
    }

    private static void delete(Path dir) {
        if (dir == null) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        } catch (IOException e) {
            throw new ModException("cannot remove the scratch folder " + dir + ": " + e.getMessage(), e);
        }
    }

    public void write(Path dir) {
        AtomicFiles.write(file(dir), out -> out.write(JSON.writeValueAsString(this).getBytes(StandardCharsets.UTF_8)));
    }

    /** The step times in a sweep's folder, or null where it has none. */
    static StepTimes read(Path dir) {
        Path file = file(dir);
        if (!Files.exists(file)) {
            return null;
        }
        try {
            return JSON.readValue(Files.readString(file, StandardCharsets.UTF_8), StepTimes.class);
        } catch (JsonProcessingException e) {
            throw new ModException(file + ": not a step_times.json: " + e.getOriginalMessage().lines().findFirst().orElse(""), e);
        } catch (IOException e) {
            throw new ModException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    /** Where a sweep's step times are. */
    public static Path file(Path dir) {
        return dir.resolve(FILE);
    }
}
