package dev.mod.tornado;

import uk.ac.manchester.tornado.api.ImmutableTaskGraph;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.WorkerGrid;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * One task graph before it is built: its named tasks and the device buffers each one touches. Building
 * a whole plan from specs lets each buffer be declared where TornadoVM needs it: moved to the device
 * in the graph that owns it, consumed from the graph that ran before in later graphs, and persisted only
 * while a graph that may run next still needs it (TornadoVM allocates a buffer only in graphs whose tasks use it).
 */
final class GraphSpec {
    /** Sets a task's grid for a run of n rows (the causal plan launches only as many work-groups as a chunk has rows). */
    interface RowGrid {
        void resize(int rows);
    }

    final String name;
    final Set<Object> buffers = new LinkedHashSet<>();
    /** Buffers this graph keeps to itself (weights, caches) even where another graph has its own of the same. */
    final Set<Object> own = new LinkedHashSet<>();
    final List<Consumer<TaskGraph>> tasks = new ArrayList<>();
    final List<Object> everyRunIn = new ArrayList<>();
    final List<Object> onDemandOut = new ArrayList<>();
    /** Names of the tasks, in order. */
    final List<String> taskNames = new ArrayList<>();
    /** The matrix-product tasks (their layout and work-group size can be set in tornado-config). */
    final List<String> products = new ArrayList<>();
    /** Work-group grids of the tasks that set their own (KernelContext kernels), by task name. */
    final Map<String, WorkerGrid> grids = new LinkedHashMap<>();
    /** How each of those grids follows the rows of a run. */
    final Map<String, RowGrid> rowGrids = new LinkedHashMap<>();

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

    /** Adds a task that runs on the given grid of work-items, resized by forRows for a run of fewer rows. */
    GraphSpec task(String taskName, WorkerGrid grid, RowGrid forRows, Consumer<TaskGraph> adder, Object... used) {
        grids.put(taskName, grid);
        rowGrids.put(taskName, forRows);
        return task(taskName, adder, used);
    }

    /** Resizes every grid of the graph for a run of n rows. */
    void resize(int rows) {
        rowGrids.values().forEach(g -> g.resize(rows));
    }

    /**
     * Task graphs from specs and, for each graph, the graphs that may run right before it (a straight chain for a
     * forward pass; the causal plan's is a cycle with two ways in). TornadoVM hands a buffer from the graph that ran
     * last to the next, so a graph consumes a buffer when every graph that may precede it uses it, and owns it when
     * none does: moved in on its first run (or on every run, for the inputs); a graph persists what a graph that may
     * follow consumes. A buffer that only some predecessors use, or that an earlier graph used and the predecessors
     * do not (it would silently be two buffers), is a mistake in the plan.
     */
    static ImmutableTaskGraph[] build(List<GraphSpec> specs, Map<String, List<String>> predecessors) {
        Map<String, GraphSpec> byName = new LinkedHashMap<>();
        specs.forEach(s -> byName.put(s.name, s));
        Map<GraphSpec, Set<Object>> consumed = new LinkedHashMap<>();
        for (int i = 0; i < specs.size(); i++) {
            GraphSpec spec = specs.get(i);
            List<GraphSpec> before = predecessors.getOrDefault(spec.name, List.of()).stream().map(byName::get).toList();
            Set<Object> in = new LinkedHashSet<>();
            for (Object buffer : spec.buffers) {
                long users = before.stream().filter(p -> p.buffers.contains(buffer)).count();
                if (users > 0 && users < before.size()) {
                    throw new IllegalStateException(spec.name + " uses a buffer that only some of the graphs before it use");
                }
                if (users > 0) {
                    in.add(buffer);
                } else if (!spec.own.contains(buffer) && specs.subList(0, i).stream().anyMatch(s -> s.buffers.contains(buffer))) {
                    throw new IllegalStateException(spec.name + " uses a buffer an earlier graph used, which the graph before it "
                            + "does not pass on: buffers must pass from each graph to the next");
                }
            }
            consumed.put(spec, in);
        }
        ImmutableTaskGraph[] graphs = new ImmutableTaskGraph[specs.size()];
        for (int i = 0; i < specs.size(); i++) {
            GraphSpec spec = specs.get(i);
            TaskGraph g = new TaskGraph(spec.name);
            if (!spec.everyRunIn.isEmpty()) {
                g.transferToDevice(DataTransferMode.EVERY_EXECUTION, spec.everyRunIn.toArray());
            }
            List<Object> firstUse = new ArrayList<>();
            for (Object buffer : spec.buffers) {
                if (consumed.get(spec).contains(buffer)) {
                    for (String from : predecessors.get(spec.name)) {
                        g.consumeFromDevice(from, buffer);
                    }
                } else if (!spec.everyRunIn.contains(buffer)) {
                    firstUse.add(buffer);
                }
            }
            if (!firstUse.isEmpty()) {
                g.transferToDevice(DataTransferMode.FIRST_EXECUTION, firstUse.toArray());
            }
            spec.tasks.forEach(task -> task.accept(g));
            List<Object> persist = new ArrayList<>();
            for (Object buffer : spec.buffers) {
                boolean passedOn = specs.stream().anyMatch(next -> predecessors.getOrDefault(next.name, List.of()).contains(spec.name)
                        && consumed.get(next).contains(buffer));
                if (passedOn) {
                    persist.add(buffer);
                }
            }
            if (!persist.isEmpty()) {
                g.persistOnDevice(persist.toArray());
            }
            if (!spec.onDemandOut.isEmpty()) {
                g.transferToHost(DataTransferMode.UNDER_DEMAND, spec.onDemandOut.toArray());
            }
            graphs[i] = g.snapshot();
        }
        return graphs;
    }

    /** Each graph's predecessor is the one before it in the list. */
    static Map<String, List<String>> chain(List<GraphSpec> specs) {
        Map<String, List<String>> predecessors = new LinkedHashMap<>();
        for (int i = 1; i < specs.size(); i++) {
            predecessors.put(specs.get(i).name, List.of(specs.get(i - 1).name));
        }
        return predecessors;
    }
}
