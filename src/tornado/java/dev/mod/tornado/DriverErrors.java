package dev.mod.tornado;

import dev.mod.ModException;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;

/**
 * Failures that TornadoVM's OpenCL driver only prints. When OpenCL refuses a launch, a build or a transfer, the driver's
 * native code prints "[TornadoVM-OCL-JNI] ERROR : clEnqueueNDRangeKernel -> Returned: -5" on the process's standard
 * output and TornadoVM carries on as though the call had run: the kernel's outputs keep what they held, and a run would
 * hand back wrong results without a word. This watch routes file descriptor 1 through a pipe that a thread copies to
 * the real output as it reads it, noting such lines; {@link #check} writes a marker through the same descriptor, waits
 * for the thread to reach it, and fails if the driver reported an error since the last check. Java's own output goes
 * through the pipe too, in order; the markers are not copied.
 *
 * <p>Installed once per JVM by the tornado backend, unless -Dmod.watchDriverOutput=off (the test JVMs, whose
 * standard output is Surefire's channel, run the CLI in another process where it matters).
 */
final class DriverErrors {
    private static final String ERROR_LINE = "[TornadoVM-OCL-JNI] ERROR";
    /** TornadoVM launching a kernel with a work-group size other than the one it was given (OpenCL, PTX and SPIR-V say so alike). */
    private static final String DROPPED_LOCAL_SIZE = "TornadoVM changed the user-defined local";
    private static final byte MARKER = 0;
    private static DriverErrors watch;
    private static boolean off;

    private final MethodHandle write;
    private final int realOut;
    private long written;
    private long seen;
    private String error;
    private String detail;

    /** The watch of this JVM, installed on first use; null where it is switched off or the platform lacks pipe(2). */
    static synchronized DriverErrors get() {
        if (watch == null && !off) {
            if ("off".equals(System.getProperty("mod.watchDriverOutput"))) {
                off = true;
                return null;
            }
            try {
                watch = new DriverErrors();
            } catch (Throwable e) {
                off = true;
                System.err.println("mod: warning: cannot watch TornadoVM's driver for errors (" + e + "); a failed launch may pass unnoticed");
            }
        }
        return watch;
    }

    private DriverErrors() throws Throwable {
        Linker linker = Linker.nativeLinker();
        var libc = linker.defaultLookup();
        MethodHandle pipe = linker.downcallHandle(libc.find("pipe").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
        MethodHandle dup = linker.downcallHandle(libc.find("dup").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
        MethodHandle dup2 = linker.downcallHandle(libc.find("dup2").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
        MethodHandle read = linker.downcallHandle(libc.find("read").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
        write = linker.downcallHandle(libc.find("write").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
        int[] fds = new int[2];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment pair = arena.allocate(ValueLayout.JAVA_INT, 2);
            if ((int) pipe.invokeExact(pair) != 0) {
                throw new IllegalStateException("pipe failed");
            }
            fds[0] = pair.getAtIndex(ValueLayout.JAVA_INT, 0);
            fds[1] = pair.getAtIndex(ValueLayout.JAVA_INT, 1);
        }
        System.out.flush();
        realOut = (int) dup.invokeExact(1);
        if (realOut < 0 || (int) dup2.invokeExact(fds[1], 1) < 0) {
            throw new IllegalStateException("dup failed");
        }
        int in = fds[0];
        Thread reader = Thread.ofPlatform().daemon().name("tornado-driver-output").start(() -> copy(read, in));
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            // what is still in the pipe reaches the real output before the JVM ends
            try {
                System.out.flush();
                drain();
                int ignored = (int) dup2.invokeExact(realOut, 1);
            } catch (Throwable e) {
                reader.interrupt();
            }
        }));
    }

    /** Fails with one line if the driver reported an error since the last check: `what` ran on `device`. */
    void check(String what, String device) {
        String failure;
        synchronized (this) {
            drain();
            failure = error;
            String more = detail;
            error = null;
            detail = null;
            if (failure != null && more != null) {
                failure += " (" + more + ")";
            }
        }
        if (failure != null) {
            throw new ModException("tornado: " + what + " on " + device + ": " + failure + "; its results are not used");
        }
    }

    // a marker through fd 1, and a wait until the reader has passed it (5 s at most, in case it has stopped)
    private synchronized void drain() {
        long n = ++written;
        byte[] marker = ((char) MARKER + Long.toString(n) + "\n").getBytes(StandardCharsets.US_ASCII);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment bytes = arena.allocateFrom(ValueLayout.JAVA_BYTE, marker);
            long ignored = (long) write.invokeExact(1, bytes, (long) marker.length);
        } catch (Throwable e) {
            return;
        }
        long deadline = System.nanoTime() + 5_000_000_000L;
        while (seen < n && System.nanoTime() < deadline) {
            try {
                wait(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    // the reader: copies the pipe to the real output, less the markers, and notes the driver's error lines
    private void copy(MethodHandle read, int in) {
        StringBuilder line = new StringBuilder();
        StringBuilder markerDigits = null;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocate(8192);
            MemorySegment out = arena.allocate(8192);
            while (true) {
                long n = (long) read.invokeExact(in, buffer, 8192L);
                if (n <= 0) {
                    return;
                }
                long kept = 0;
                for (long i = 0; i < n; i++) {
                    byte b = buffer.get(ValueLayout.JAVA_BYTE, i);
                    if (markerDigits != null) {
                        if (b == '\n') {
                            long reached = Long.parseLong(markerDigits.toString());
                            markerDigits = null;
                            kept = flush(out, kept);
                            synchronized (this) {
                                seen = reached;
                                notifyAll();
                            }
                        } else {
                            markerDigits.append((char) b);
                        }
                        continue;
                    }
                    if (b == MARKER) {
                        markerDigits = new StringBuilder();
                        continue;
                    }
                    out.set(ValueLayout.JAVA_BYTE, kept++, b);
                    if (b == '\n') {
                        note(line.toString());
                        line.setLength(0);
                    } else if (line.length() < 1024) {
                        line.append((char) (b & 0xff));
                    }
                }
                flush(out, kept);
            }
        } catch (Throwable e) {
            // the pipe closed: nothing more to copy
        }
    }

    private long flush(MemorySegment out, long count) throws Throwable {
        long done = 0;
        while (done < count) {
            long n = (long) write.invokeExact(realOut, out.asSlice(done), count - done);
            if (n <= 0) {
                break;
            }
            done += n;
        }
        return 0;
    }

    // "[TornadoVM-OCL-JNI] ERROR : clEnqueueNDRangeKernel -> Returned: -5" is the error; a driver's or simulator's
    // tab-indented explanation just before it (Oclgrind's "total local memory size (32776) exceeds ...") its detail
    private synchronized void note(String text) {
        String t = new String(text.getBytes(StandardCharsets.ISO_8859_1), StandardCharsets.UTF_8);
        if (t.contains(DROPPED_LOCAL_SIZE)) {
            if (error == null) {
                error = "TornadoVM launched a kernel with a work-group size other than its own, which the kernel depends on";
            }
        } else if (t.startsWith(ERROR_LINE)) {
            if (error == null) {
                error = describe(t.substring(ERROR_LINE.length()).replaceFirst("^\\s*:\\s*", ""));
            }
        } else if (t.startsWith("\t") && !t.startsWith("\tFunction:") && !t.startsWith("\tError:") && error == null) {
            detail = t.trim();
        }
    }

    // "clEnqueueNDRangeKernel -> Returned: -5" as "clEnqueueNDRangeKernel returned CL_OUT_OF_RESOURCES (-5)"
    static String describe(String call) {
        String[] parts = call.split("\\s*->\\s*Returned:\\s*");
        if (parts.length != 2) {
            return call.trim();
        }
        String code = parts[1].trim();
        return parts[0].trim() + " returned " + CODES.getOrDefault(code, "error") + " (" + code + ")";
    }

    /** The OpenCL errors a run can meet, by code (cl.h). */
    private static final java.util.Map<String, String> CODES = java.util.Map.ofEntries(
            java.util.Map.entry("-4", "CL_MEM_OBJECT_ALLOCATION_FAILURE"), java.util.Map.entry("-5", "CL_OUT_OF_RESOURCES"),
            java.util.Map.entry("-6", "CL_OUT_OF_HOST_MEMORY"), java.util.Map.entry("-11", "CL_BUILD_PROGRAM_FAILURE"),
            java.util.Map.entry("-30", "CL_INVALID_VALUE"), java.util.Map.entry("-36", "CL_INVALID_COMMAND_QUEUE"),
            java.util.Map.entry("-38", "CL_INVALID_MEM_OBJECT"), java.util.Map.entry("-45", "CL_INVALID_PROGRAM_EXECUTABLE"),
            java.util.Map.entry("-48", "CL_INVALID_KERNEL"), java.util.Map.entry("-52", "CL_INVALID_KERNEL_ARGS"),
            java.util.Map.entry("-54", "CL_INVALID_WORK_GROUP_SIZE"), java.util.Map.entry("-55", "CL_INVALID_WORK_ITEM_SIZE"),
            java.util.Map.entry("-58", "CL_INVALID_EVENT"), java.util.Map.entry("-61", "CL_INVALID_BUFFER_SIZE"));
}
