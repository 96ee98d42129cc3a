package dev.mod.study;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

class StudyEnvironmentTest {
    @Test
    void theCpuIsNamedWithItsFamilyAndModelNumbers() {
        // "model" is also the start of "model name": only the exact key counts, wherever the lines put it
        List<String> epyc = List.of("processor\t: 0", "vendor_id\t: AuthenticAMD", "cpu family\t: 25", "model name\t: AMD EPYC",
                "model\t\t: 17", "stepping\t: 1");
        assertEquals("AMD EPYC (family 25, model 17)", StudyEnvironment.describeCpu(epyc));
        assertEquals("Some CPU", StudyEnvironment.describeCpu(List.of("model name : Some CPU")), "no numbers: the name alone");
        assertNull(StudyEnvironment.describeCpu(List.of("processor : 0", "model : 3")), "no name: the caller falls back");
    }
}
