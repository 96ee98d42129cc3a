package dev.mod.tornado;

import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.WorkerGrid;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * One task graph before it is built: its named tasks and the device buffers each one touches. Building
 * the whole plan from specs lets each buffer be declared where TornadoVM needs it: moved to the device
 * in the first graph that uses it, consumed from the previous user in later graphs, and persisted only
 * while a later graph still needs it (TornadoVM allocates a buffer only in graphs whose tasks use it).
 */
final class GraphSpec {
    final String name;
    final Set<Object> buffers = new LinkedHashSet<>();
    final List<Consumer<TaskGraph>> tasks = new ArrayList<>();
    final List<Object> everyRunIn = new ArrayList<>();
    final List<Object> onDemandOut = new ArrayList<>();
    /** Names of the tasks, in order. */
    final List<String> taskNames = new ArrayList<>();
    /** The matrix-product tasks (their layout and work-group size can be set in tornado-config). */
    final List<String> products = new ArrayList<>();
    /** Work-group grids of the tasks that set their own (KernelContext kernels), by task name. */
    final Map<String, WorkerGrid> grids = new LinkedHashMap<>();

    GraphSpec(String name) {
        this.name = name;
    }

    /** Adds a task; buffers lists every device array it reads or writes. */
    GraphSpec task(String taskName, Consumer<TaskGraph> adder, Object... used) {
        for (int i = 0; i < used.length; i++) {
            for (int j = 0; j < i; j++) {
                if (used[i] == used[j]) {
                    // TornadoVM 5.2.1's scheduler loops forever on such a task.
                    throw new IllegalStateException(name + "." + taskName + " names one buffer twice");
                }
            }
        }
        taskNames.add(taskName);
        tasks.add(adder);
        buffers.addAll(List.of(used));
        return this;
    }

    /** Adds a task that runs on the given grid of work-items. */
    GraphSpec task(String taskName, WorkerGrid grid, Consumer<TaskGraph> adder, Object... used) {
        grids.put(taskName, grid);
        return task(taskName, adder, used);
    }
}
