package dev.mod.backend;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Why the tornado backend could not start, as the one-line error says it. */
class BackendsTest {
    @Test
    void withoutTornadoVMsClassesTheErrorPointsAtTheLauncher() {
        assertEquals(Backends.NOT_UNDER_TORNADO,
                Backends.tornadoMissing(new NoClassDefFoundError("uk/ac/manchester/tornado/api/TaskGraph")).getMessage());
        assertEquals(Backends.NOT_UNDER_TORNADO,
                Backends.tornadoMissing(new ClassNotFoundException("dev.mod.tornado.TornadoForwardPlan")).getMessage());
        // A jar built with the tornado backend, run on a plain JVM (the release archive's bin/mod).
        assertEquals(Backends.NOT_UNDER_TORNADO, Backends.tornadoMissing(new NoClassDefFoundError("Could not initialize class")
                .initCause(new ClassNotFoundException("uk.ac.manchester.tornado.api.runtime.TornadoRuntimeProvider"))).getMessage());
    }

    @Test
    void whenTornadoVMFailsToStartTheErrorGivesItsFirstCause() {
        // What TornadoVM 5.2.1 throws with -Dtornado.device=0:0, wrapped as its static initialiser fails.
        Error failure = new ExceptionInInitializerError(new NumberFormatException("For input string: \"0:0\""));
        assertEquals("TornadoVM failed to start: NumberFormatException: For input string: \"0:0\"",
                Backends.tornadoMissing(failure).getMessage());
        Error missingLibrary = new UnsatisfiedLinkError("no tornado-opencl in java.library.path\nsecond line");
        assertEquals("TornadoVM failed to start: UnsatisfiedLinkError: no tornado-opencl in java.library.path",
                Backends.tornadoMissing(missingLibrary).getMessage());
    }
}
