package dev.mod.tornado;

import uk.ac.manchester.tornado.api.TornadoExecutionResult;
import uk.ac.manchester.tornado.api.TornadoProfilerResult;

import java.util.Map;

/** One graph of a plan's last run, as TornadoVM's profiler saw it: bytes moved, kernel, transfer and compile time, per-task kernel time. */
public record GraphProfile(String graph, int tasks, long bytesIn, long bytesOut, long kernelNanos, long transferNanos,
                           long compileNanos, Map<String, Long> taskKernelNanos) {
    /** The profile of a graph's run (the plan built with the profiler on). */
    static GraphProfile of(String graph, int tasks, TornadoExecutionResult result) {
        TornadoProfilerResult p = result.getProfilerResult();
        return new GraphProfile(graph, tasks, p.getTotalBytesCopyIn(), p.getTotalBytesCopyOut(), p.getDeviceKernelTime(),
                p.getDataTransfersTime(), p.getCompileTime(), TornadoProfileLog.taskKernelNanos(graph, p.getProfileLog()));
    }
}
