package dev.mod.study;

import dev.mod.TestModels;
import dev.mod.cpu.CpuKernels;
import dev.mod.model.Experts;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.RouterWeighting;
import dev.mod.plan.CausalPlan;
import dev.mod.plan.ForwardPlan;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StudyRunnerTest {
    @TempDir
    Path dir;

    @Test
    void aFailingDeviceIsReportedInItsRowsAndTheStudyGoesOn() {
        ModelConfig config = TestModels.config(2, 2, 0.25, List.of(1), RouterWeighting.RAW);
        Model model = TestModels.model(config, 1);
        StudySettings settings = new StudySettings("test", config.toJsonTree(), 1, List.of(0.25, 1.0),
                List.of(16), 1, List.of("broken", "cpu"), 0, 3, 4);
        try (CpuKernels kernels = new CpuKernels(2)) {
            StudyDevice broken = StudyDevice.of("broken", "a device that runs out of memory", (m, b, t) -> {
                throw new OutOfMemoryError("device out of memory");
            }, (m, rule, s, r, c) -> {
                throw new OutOfMemoryError("device out of memory");
            }, kernels);
            StudyDevice cpu = StudyDevice.of("cpu", "cpu backend", (m, b, t) -> new ForwardPlan(m, kernels, b, t),
                    (m, rule, s, r, c) -> new CausalPlan(m, kernels, rule, s, r, c), kernels);
            StudyFile study = new StudyRunner(settings, model, Map.of(), dir).run(List.of(broken, cpu), List.of(), r -> { });
            assertEquals(6, study.rows().size());
            for (StudyRow r : study.rows().subList(0, 3)) {
                assertEquals("broken", r.device());
                assertEquals("device out of memory", r.error());
                assertNull(r.medianMs());
                assertEquals("device out of memory", r.decode().error());
            }
            for (StudyRow r : study.rows().subList(3, 6)) {
                assertEquals("cpu", r.device());
                assertNull(r.error());
                assertNotNull(r.medianMs());
                assertTrue(r.flops() > 0);
                assertTrue(r.decode().medianMs() > 0);
                assertEquals(r.capacity() == null, r.decode().speedup() == null, "MoD rows have a decode speedup");
            }
            StudyDecode dense = study.rows().get(3).decode();
            StudyDecode full = study.rows().get(5).decode();
            assertNull(dense.routedFraction(), "the dense model routes nothing");
            assertEquals(dense.denseKvCacheBytes(), dense.kvCacheBytes());
            assertEquals(1.0, full.routedFraction(), "calibrated at capacity 1, every token is routed");
            assertEquals(full.denseKvCacheBytes(), full.kvCacheBytes());
            assertTrue(study.rows().get(4).decode().kvCacheBytes() < dense.kvCacheBytes());
            assertEquals(study.rows(), StudyFile.read(dir.resolve("study.json")).rows(), "the file holds every row");
        }
    }

    /** A model with experts: its dense row (MoE) and its MoD rows (staged MoDE) are timed in prefill and in decode. */
    @Test
    void aModelWithExpertsIsTimedInEveryRow() {
        ModelConfig config = TestModels.config(2, 2, 0.25, List.of(1), RouterWeighting.RAW).withExperts(new Experts(3, 1, 0.3, 16));
        Model model = TestModels.model(config, 2);
        StudySettings settings = new StudySettings("test", config.toJsonTree(), 1, List.of(0.25), List.of(16), 1, List.of("cpu"), 0, 3, 4);
        try (CpuKernels kernels = new CpuKernels(2)) {
            StudyDevice cpu = StudyDevice.of("cpu", "cpu backend", (m, b, t) -> new ForwardPlan(m, kernels, b, t),
                    (m, rule, s, r, c) -> new CausalPlan(m, kernels, rule, s, r, c), kernels);
            StudyFile study = new StudyRunner(settings, model, Map.of(), dir).run(List.of(cpu), List.of(), r -> { });
            assertEquals(2, study.rows().size());
            for (StudyRow r : study.rows()) {
                assertNull(r.error());
                assertNull(r.decode().error(), r.decode().error());
                assertTrue(r.medianMs() > 0 && r.decode().medianMs() > 0);
            }
        }
    }
}
