package dev.mod.tornado;

import dev.mod.ModException;
import dev.mod.model.RouterWeighting;
import dev.mod.train.AdamW;
import dev.mod.train.Parameters;
import dev.mod.train.TrainingKernels;
import uk.ac.manchester.tornado.api.DataRange;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.TornadoExecutionResult;
import uk.ac.manchester.tornado.api.WorkerGrid;
import uk.ac.manchester.tornado.api.WorkerGrid2D;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.enums.ProfilerMode;
import uk.ac.manchester.tornado.api.enums.TornadoDeviceType;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The training step as TornadoVM task graphs: {@link dev.mod.train.TrainingPlan}'s calls, traced once (trace) and
 * then replayed, each of its sections (a layer's forward, the head's backward, the clipping, the update) one task
 * graph of {@link ArenaKernels}, compiled on the first step and reused by every later one.
 *
 * <p>Every array the plan names (weights, gradients, AdamW's moments, activations, the kernels' own scratch) is a
 * range of one device array, the arena, laid out when the trace ends: TornadoVM hands device buffers from a graph only
 * to the graph that runs next, so one buffer that every graph uses lets any graph follow any other, and the run's whole
 * state stays on the device. Per step only the batch's tokens (and a section's few host values: a random draw, the
 * learning rate) go in, the losses and the gradient norm come out; anything else comes over when the plan downloads
 * it (a diagnostic, a checkpoint). Each replayed call is checked against the trace: a step that changed would
 * otherwise run the old graphs.
 */
final class TornadoTrainingKernels implements TrainingKernels {
    /** A weight: the products read its FP32 master copy in the arena, which AdamW updates in place. */
    private static final class Weight implements Matrix {
        final int out;
        final int in;
        float[] master;

        Weight(int out, int in) {
            this.out = out;
            this.in = in;
        }
    }

    private record Rows(float[] x, int n, int in) implements Activations {
    }

    /** Adds a call's task to its section's graph, once the arena is laid out. */
    @FunctionalInterface
    private interface TaskAdder {
        void add(TaskGraph g, String task, Call call);
    }

    /** A traced call: its kernel, what it names (arrays by identity, sizes by value) and its place in the section's input. */
    private record Call(String op, Object[] key, TaskAdder adder, Section section, int inputAt, boolean readsInput, WorkerGrid grid) {
    }

    private static final class Section {
        final String name;
        final int graph;
        final List<Call> calls = new ArrayList<>();
        int inputFloats;
        FloatArray input;
        /** The graph that goes on with the section's calls past MAX_TASKS; null for the last. */
        Section next;

        Section(String name, int graph) {
            this.name = name;
            this.graph = graph;
        }
    }

    private static final String SETUP = "setup";
    /**
     * The most tasks in one graph: a layer's backward has about 40, and TornadoVM 5.2.1 failed to run a graph of 40 with
     * the tiled products (a bailout at its first run that gave no reason); longer sections go on in a second graph.
     */
    static final int MAX_TASKS = 24;

    private final TornadoDevice device;
    private final boolean profiling;
    private final Map<String, Section> sections = new LinkedHashMap<>();
    /** Offsets in the arena of every array a call names, in the order they were first named. */
    private final Map<Object, Integer> offsets = new IdentityHashMap<>();
    private final List<Object> arrays = new ArrayList<>();
    /** Tensors laid out one after another (a set of parameters, its gradients, AdamW's moments), ahead of the rest. */
    private final List<List<float[]>> groups = new ArrayList<>();
    /** Arrays whose host copy is current: downloaded since the last graph ran. */
    private final Set<Object> fresh = Collections.newSetFromMap(new IdentityHashMap<>());

    private final int rows;
    /** Whether the products take the tiled layout (GPUs) rather than the plain one (CPU devices). */
    private final boolean tiled;
    // the kernels' own scratch, [R] each: RMSNorm's statistics, a loss per row, top-k's ranks (made by trace())
    private float[] rstd;
    private float[] rowLoss;
    private float[] rank;
    private final float[] norm = new float[2];
    private float[] partials;

    private boolean tracing;
    private Section current;
    private int position;
    private boolean currentRan = true;
    private FloatArray arena;
    private TornadoExecutionPlan plan;
    private TornadoExecutionResult last;
    private final List<GraphProfile> profile = new ArrayList<>();
    private long arenaBytes;
    private long downloadedBytes;

    /**
     * @param deviceName "B:D", or null for tornado-config's mod.tornado.device, else TornadoVM's default
     * @param rows       the most rows a call works on (B * T)
     */
    TornadoTrainingKernels(String deviceName, int rows, boolean profiling) {
        TornadoPlacement placement = TornadoPlacement.read(System.getProperties());
        this.device = StageTasks.device(deviceName, placement);
        this.tiled = tiledProducts(device, placement.matmul().get("*"));
        this.profiling = profiling;
        DriverErrors.get();
        this.rows = rows;
    }

    // the tiled layout on devices other than CPUs that have its work-group and local memory, unless tornado-config's
    // mod.tornado.matmul says rows (the plain layout) or tiled
    private static boolean tiledProducts(TornadoDevice device, String setting) {
        KernelBudget budget = KernelBudget.of(device);
        if (setting == null) {
            return device.getDeviceType() != TornadoDeviceType.CPU && budget.fits(KernelBudget.TILED_PRODUCT);
        }
        if (setting.equals("vector")) {
            throw new ModException("tornado-config: " + TornadoPlacement.PREFIX + "matmul=vector: training's products take rows or tiled");
        }
        String why = setting.equals("tiled") ? budget.shortfall(KernelBudget.TILED_PRODUCT) : null;
        if (why != null) {
            throw new ModException("tornado-config: " + TornadoPlacement.PREFIX + "matmul=tiled: " + why);
        }
        return setting.equals("tiled");
    }

    /** A one-line refusal, before anything is made, of a run that needs more than the device has (TrainingPlan.bytesNeeded). */
    void requireMemory(long bytes) {
        StageTasks.checkMemory(device, bytes, bytes);
    }

    @Override
    public String device() {
        return "tornado " + device.getPhysicalDevice().getDeviceName();
    }

    @Override
    public void trace(Runnable step) {
        if (plan != null) {
            throw new IllegalStateException("the step was traced already");
        }
        rstd = new float[rows];
        rowLoss = new float[rows];
        rank = new float[rows];
        tracing = true;
        try {
            step.run();
        } finally {
            tracing = false;
        }
        build();
    }

    /** Bytes of the arena: the whole run on the device. */
    long arenaBytes() {
        return arenaBytes;
    }

    /** Bytes the host's copies have brought over from the device (download) since the kernels were made. */
    long downloadedBytes() {
        return downloadedBytes;
    }

    /** TornadoVM's profile of each graph run since the last call (the kernels made with profiling on). */
    List<GraphProfile> takeProfile() {
        List<GraphProfile> taken = List.copyOf(profile);
        profile.clear();
        return taken;
    }

    @Override
    public void section(String name) {
        if (tracing) {
            if (sections.containsKey(name)) {
                throw new IllegalStateException("section " + name + " twice in one step");
            }
            current = new Section(name, sections.size() + 1);
            sections.put(name, current);
            return;
        }
        runCurrent();
        current = sections.get(name);
        if (current == null) {
            throw new IllegalStateException("section " + name + " was not in the traced step");
        }
        position = 0;
        currentRan = false;
    }

    // runs the section whose calls were just replayed
    private void runCurrent() {
        if (currentRan) {
            return;
        }
        if (position != current.calls.size() || current.next != null) {
            throw new IllegalStateException("section " + current.name + " ran " + position + " of its " + current.calls.size()
                    + " traced calls" + (current.next != null ? " and not its next graph" : ""));
        }
        execute();
    }

    private void execute() {
        currentRan = true;
        last = plan.withGraph(current.graph).execute();
        fresh.clear();
        if (profiling) {
            profile.add(GraphProfile.of(current.name, current.calls.size(), last));
        }
    }

    // the traced call, or in a replay the next one, checked against what it names now
    private Call call(String op, int inputFloats, boolean readsInput, TaskAdder adder, Object... key) {
        return call(op, inputFloats, readsInput, null, adder, key);
    }

    private Call call(String op, int inputFloats, boolean readsInput, WorkerGrid grid, TaskAdder adder, Object... key) {
        if (current == null) {
            throw new IllegalStateException(op + " outside a section");
        }
        if (tracing) {
            if (current.calls.size() == MAX_TASKS) {
                Section next = new Section(current.name + "." + (sections.size() + 1), sections.size() + 1);
                sections.put(next.name, next);
                current.next = next;
                current = next;
            }
            for (Object o : key) {
                if ((o instanceof float[] || o instanceof int[] || o instanceof double[]) && !offsets.containsKey(o)) {
                    offsets.put(o, -1);
                    arrays.add(o);
                }
            }
            Call c = new Call(op, key, adder, current, current.inputFloats, readsInput, grid);
            current.inputFloats += inputFloats;
            current.calls.add(c);
            return c;
        }
        if (!currentRan && position == current.calls.size() && current.next != null) {
            execute();
            current = current.next;
            position = 0;
            currentRan = false;
        }
        if (currentRan || position >= current.calls.size()) {
            throw new IllegalStateException(op + ": the step makes more calls in section " + current.name + " than it did when traced");
        }
        Call c = current.calls.get(position++);
        boolean same = c.op.equals(op) && c.key.length == key.length;
        for (int i = 0; same && i < key.length; i++) {
            same = key[i] instanceof float[] || key[i] instanceof int[] || key[i] instanceof double[] ? key[i] == c.key[i]
                    : key[i].equals(c.key[i]);
        }
        if (!same) {
            throw new IllegalStateException("section " + current.name + ", call " + position + ": " + op
                    + " differs from the traced " + c.op + ": the step changed after it was traced");
        }
        return c;
    }

    private Call call(String op, TaskAdder adder, Object... key) {
        return call(op, 0, false, adder, key);
    }

    private int at(Object array) {
        return offsets.get(array);
    }

    // floats in the arena of a host array: float[], int[] (exact below 2^24) or double[] (the losses, rounded to float)
    private static int length(Object array) {
        return switch (array) {
            case float[] f -> f.length;
            case int[] i -> i.length;
            case double[] d -> d.length;
            default -> throw new IllegalArgumentException("not an array the arena holds: " + array);
        };
    }

    // lays the arena out, checks it against the device, and builds one graph per section (and a setup graph that moves
    // the arena in)
    private void build() {
        for (Object scratch : new Object[] {rstd, rowLoss, rank, norm}) {
            if (!offsets.containsKey(scratch)) {
                offsets.put(scratch, -1);
                arrays.add(scratch);
            }
        }
        List<Object> order = new ArrayList<>();
        groups.forEach(order::addAll);
        for (Object a : arrays) {
            if (groups.stream().noneMatch(g -> g.contains(a))) {
                order.add(a);
            }
        }
        long size = 0;
        for (Object a : order) {
            offsets.put(a, (int) size);
            size += length(a);
        }
        if (size > Integer.MAX_VALUE - 16) {
            throw new ModException("the tornado training pass keeps a run in one device array of at most 2^31 floats; this one needs "
                    + size + " (a smaller model, batch or sequence)");
        }
        arenaBytes = size * Float.BYTES;
        StageTasks.checkMemory(device, arenaBytes, arenaBytes);
        arena = new FloatArray((int) size);
        for (Object a : order) {
            int o = at(a);
            if (a instanceof float[] f) {
                for (int i = 0; i < f.length; i++) {
                    arena.set(o + i, f[i]);
                }
            } else if (a instanceof int[] v) {
                for (int i = 0; i < v.length; i++) {
                    arena.set(o + i, v[i]);
                }
            } else {
                double[] v = (double[]) a;
                for (int i = 0; i < v.length; i++) {
                    arena.set(o + i, (float) v[i]);
                }
            }
        }
        List<GraphSpec> specs = new ArrayList<>();
        GraphSpec setup = new GraphSpec(SETUP);
        // a task that reads the arena: TornadoVM moves in only what a graph's tasks read
        setup.task("copy", t -> t.task("copy", ArenaKernels::copy, arena, at(norm), at(norm), 2), arena);
        specs.add(setup);
        for (Section s : sections.values()) {
            GraphSpec g = new GraphSpec(s.name);
            if (s.inputFloats > 0) {
                s.input = new FloatArray(s.inputFloats);
                g.everyRunIn.add(s.input);
            }
            for (int i = 0; i < s.calls.size(); i++) {
                Call c = s.calls.get(i);
                String task = c.op + i;
                Object[] used = c.readsInput ? new Object[] {arena, s.input} : new Object[] {arena};
                if (c.grid == null) {
                    g.task(task, t -> c.adder.add(t, task, c), used);
                } else {
                    g.task(task, c.grid, rows -> { }, t -> c.adder.add(t, task, c), used);
                }
            }
            g.onDemandOut.add(arena);
            specs.add(g);
        }
        // Any section may follow any other but itself (a forward after an update, or after a forward: an evaluation):
        // each consumes the arena from whichever ran last.
        Map<String, List<String>> predecessors = new LinkedHashMap<>();
        List<String> names = specs.stream().map(g -> g.name).toList();
        for (Section s : sections.values()) {
            predecessors.put(s.name, names.stream().filter(n -> !n.equals(s.name)).toList());
        }
        plan = new TornadoExecutionPlan(GraphSpec.build(specs, predecessors));
        if (specs.stream().anyMatch(spec -> !spec.grids.isEmpty())) {
            GridScheduler grids = new GridScheduler();
            specs.forEach(spec -> spec.grids.forEach((task, grid) -> grids.addWorkerGrid(spec.name + "." + task, grid)));
            plan.withGridScheduler(grids);
        }
        plan.withDevice(device);
        if (profiling) {
            plan.withProfiler(ProfilerMode.SILENT);
        }
        last = plan.withGraph(0).execute();
        current = null;
        currentRan = true;
    }

    @Override
    public void upload(int[] a) {
        Call c = call("upload", a.length, true, (t, task, k) -> t.task(task, ArenaKernels::copyIn, arena, k.section.input, at(a), k.inputAt,
                a.length), a);
        if (!tracing) {
            for (int i = 0; i < a.length; i++) {
                c.section.input.set(c.inputAt + i, a[i]);
            }
        }
    }

    @Override
    public void download(float[] a) {
        if (copyOver(a)) {
            for (int i = 0; i < a.length; i++) {
                a[i] = arena.get(at(a) + i);
            }
        }
    }

    @Override
    public void download(int[] a) {
        if (copyOver(a)) {
            for (int i = 0; i < a.length; i++) {
                a[i] = (int) arena.get(at(a) + i);
            }
        }
    }

    @Override
    public void download(double[] a) {
        if (copyOver(a)) {
            for (int i = 0; i < a.length; i++) {
                a[i] = arena.get(at(a) + i);
            }
        }
    }

    // brings an array's range of the arena over from the device, unless the host has it since the last graph ran
    private boolean copyOver(Object a) {
        if (tracing || plan == null || !offsets.containsKey(a)) {
            return false;
        }
        runCurrent();
        if (!fresh.add(a) || length(a) == 0) {
            return false;
        }
        last.transferToHost(new DataRange(arena).withOffset(at(a)).withSize(length(a)));
        downloadedBytes += (long) length(a) * Float.BYTES;
        return true;
    }

    @Override
    public Matrix matrix(int out, int in) {
        return new Weight(out, in);
    }

    @Override
    public void load(Matrix w, float[] master) {
        Weight weight = (Weight) w;
        if (weight.master != null && weight.master != master) {
            throw new IllegalStateException("a weight's master copy changed after the step was traced");
        }
        weight.master = master;
    }

    @Override
    public void matmul(float[] out, float[] x, Matrix w, int n) {
        Weight m = (Weight) w;
        if (tiled) {
            product(out, x, m.in, 1, m.master, m.in, 1, n, m.out, m.in, 0);
            return;
        }
        call("matmul", (t, task, c) -> t.task(task, ArenaMatmul::matmul, arena, at(x), at(m.master), at(out), n, m.in, m.out),
                out, x, m.master, n);
    }

    @Override
    public void matmulBackwardInput(float[] dx, float[] dout, Matrix w, int n) {
        backwardInput(dx, dout, (Weight) w, n, 0);
    }

    @Override
    public void matmulBackwardInputAdd(float[] dx, float[] dout, Matrix w, int n) {
        backwardInput(dx, dout, (Weight) w, n, 1);
    }

    // dx[n, in] (+)= dout[n, out] . w[out, in]
    private void backwardInput(float[] dx, float[] dout, Weight m, int n, int add) {
        if (tiled) {
            product(dx, dout, m.out, 1, m.master, 1, m.in, n, m.in, m.out, add);
            return;
        }
        call("matmulBackwardInput", (t, task, c) -> t.task(task, ArenaMatmul::matmulBackwardInput, arena, at(dout), at(m.master),
                at(dx), n, m.in, m.out, add), dx, dout, m.master, n, add);
    }

    @Override
    public void matmulBackwardWeight(float[] dw, float[] dout, float[] x, int n, int out, int in) {
        if (tiled) {
            product(dw, dout, 1, out, x, 1, in, out, in, n, 0);
            return;
        }
        call("matmulBackwardWeight", (t, task, c) -> t.task(task, ArenaMatmul::matmulBackwardWeight, arena, at(dout), at(x), at(dw),
                n, in, out), dw, dout, x, n, out, in);
    }

    // c[M, N] (+ when add is 1) = sum over k < K of A(m, k) B(n, k), A(m, k) = a[m am + k ak], B(n, k) = b[n bn + k bk]: the
    // tiled layout (ArenaMatmul.productTiled)
    private void product(float[] c, float[] a, int am, int ak, float[] b, int bn, int bk, int m, int n, int k, int add) {
        WorkerGrid grid = new WorkerGrid2D(StageTasks.ceilDiv(n, ArenaMatmul.TILE) * ArenaMatmul.TILE_ITEMS,
                StageTasks.ceilDiv(m, ArenaMatmul.TILE) * ArenaMatmul.TILE_ITEMS);
        grid.setLocalWork(ArenaMatmul.TILE_ITEMS, ArenaMatmul.TILE_ITEMS, 1);
        call("product", 0, false, grid, (t, task, call) -> t.task(task, ArenaMatmul::productTiled, new KernelContext(), arena, at(a), am,
                ak, at(b), bn, bk, at(c), m, n, k, add), c, a, am, ak, b, bn, bk, m, n, k, add);
    }

    @Override
    public Activations activations(float[] x, int n, int in) {
        return new Rows(x, n, in);
    }

    @Override
    public void matmulBackwardWeight(float[] dw, float[] dout, Activations x, int n, int out) {
        Rows rows = (Rows) x;
        matmulBackwardWeight(dw, dout, rows.x, n, out, rows.in);
    }

    @Override
    public void embed(float[] x, int[] tokens, float[] emb, int rows, int d) {
        call("embed", (t, task, c) -> t.task(task, ArenaKernels::embed, arena, at(x), at(tokens), at(emb), rows, d), x, tokens, emb,
                rows, d);
    }

    @Override
    public void embedBackward(float[] demb, float[] dx, int[] tokens, int rows, int d) {
        int vocab = demb.length / d;
        call("embedBackward", (t, task, c) -> t.task(task, ArenaKernels::embedBackward, arena, at(demb), at(dx), at(tokens), rows,
                vocab, d), demb, dx, tokens, rows, d);
    }

    @Override
    public void rmsnorm(float[] out, float[] x, float[] w, int n, int d, double eps) {
        rstd(x, n, d, eps);
        call("rmsnorm", (t, task, c) -> t.task(task, ArenaKernels::rmsnorm, arena, at(x), at(rstd), at(w), at(out), n, d), out, x, w,
                n, d);
    }

    private void rstd(float[] x, int n, int d, double eps) {
        call("rmsnormRstd", (t, task, c) -> t.task(task, ArenaKernels::rmsnormRstd, arena, at(x), at(rstd), n, d, (float) eps), x, n,
                d, eps);
    }

    @Override
    public void rmsnormBackward(float[] dx, float[] dw, float[] dout, float[] x, float[] w, int n, int d, double eps) {
        rstd(x, n, d, eps);
        call("rmsnormBackward", (t, task, c) -> t.task(task, ArenaKernels::rmsnormBackward, arena, at(dx), at(dout), at(x), at(w),
                at(rstd), n, d), dx, dout, x, w, n, d);
        call("rmsnormWeightGrad", (t, task, c) -> t.task(task, ArenaKernels::rmsnormWeightGrad, arena, at(dw), at(dout), at(x),
                at(rstd), n, d), dw, dout, x, n, d);
    }

    @Override
    public void rope(float[] x, int[] positions, float[] cos, float[] sin, int n, int heads, int dh) {
        call("rope", (t, task, c) -> t.task(task, ArenaKernels::rope, arena, at(x), at(positions), at(cos), at(sin), n, heads, dh), x,
                positions, cos, sin, n, heads, dh);
    }

    @Override
    public void add(float[] out, float[] a, float[] b, int n) {
        call("add", (t, task, c) -> t.task(task, ArenaKernels::add, arena, at(a), at(b), at(out), n), out, a, b, n);
    }

    @Override
    public void zero(float[] a, int n) {
        call("zero", (t, task, c) -> t.task(task, ArenaKernels::zero, arena, at(a), n), a, n);
    }

    @Override
    public void copy(float[] dst, float[] src, int n) {
        call("copy", (t, task, c) -> t.task(task, ArenaKernels::copy, arena, at(src), at(dst), n), dst, src, n);
    }

    @Override
    public void attention(float[] out, float[] lse, float[] q, float[] k, float[] v, int batch, int seqLen, int heads, int kvHeads,
                          int dh) {
        call("attention", (t, task, c) -> t.task(task, ArenaKernels::attention, arena, at(q), at(k), at(v), at(out), at(lse), batch,
                seqLen, heads, kvHeads, dh), out, lse, q, k, v, batch, seqLen, heads, kvHeads, dh);
    }

    @Override
    public void attentionBackward(float[] dq, float[] dk, float[] dv, float[] dout, float[] out, float[] lse, float[] q, float[] k,
                                  float[] v, int batch, int seqLen, int heads, int kvHeads, int dh) {
        call("attentionBackwardQuery", (t, task, c) -> t.task(task, ArenaKernels::attentionBackwardQuery, arena, at(dq), at(dout),
                at(q), at(k), at(v), at(out), at(lse), batch, seqLen, heads, kvHeads, dh), dq, dout, q, k, v, out, lse, batch, seqLen,
                heads, kvHeads, dh);
        call("attentionBackwardKeyValue", (t, task, c) -> t.task(task, ArenaKernels::attentionBackwardKeyValue, arena, at(dk), at(dv),
                at(dout), at(q), at(k), at(v), at(out), at(lse), batch, seqLen, heads, kvHeads, dh), dk, dv, dout, q, k, v, out, lse,
                batch, seqLen, heads, kvHeads, dh);
    }

    @Override
    public void swiglu(float[] s, float[] g, float[] u, int n) {
        call("swiglu", (t, task, c) -> t.task(task, ArenaKernels::swiglu, arena, at(g), at(u), at(s), n), s, g, u, n);
    }

    @Override
    public void swigluBackward(float[] dg, float[] du, float[] ds, float[] g, float[] u, int n) {
        call("swigluBackward", (t, task, c) -> t.task(task, ArenaKernels::swigluBackward, arena, at(ds), at(g), at(u), at(dg), at(du),
                n), dg, du, ds, g, u, n);
    }

    @Override
    public void routerLogits(float[] r, float[] x, float[] w, int rows, int d) {
        call("routerLogits", (t, task, c) -> t.task(task, ArenaKernels::routerLogits, arena, at(x), at(w), at(r), rows, d), r, x, w,
                rows, d);
    }

    @Override
    public void routerLogitsBackward(float[] dx, float[] dw, float[] dr, float[] x, float[] w, int rows, int d) {
        call("routerBackwardInput", (t, task, c) -> t.task(task, ArenaKernels::routerBackwardInput, arena, at(dx), at(dr), at(w), rows,
                d), dx, dr, w, rows, d);
        call("routerBackwardWeight", (t, task, c) -> t.task(task, ArenaKernels::routerBackwardWeight, arena, at(dw), at(dr), at(x),
                rows, d), dw, dr, x, rows, d);
    }

    @Override
    public void select(int[] sel, float[] scores, int batch, int seqLen, int capacity) {
        call("topKRank", (t, task, c) -> t.task(task, ArenaKernels::topKRank, arena, at(scores), at(rank), batch, seqLen), scores,
                batch, seqLen);
        call("topKCompact", (t, task, c) -> t.task(task, ArenaKernels::topKCompact, arena, at(rank), at(sel), batch, seqLen, capacity),
                sel, batch, seqLen, capacity);
    }

    @Override
    public void topKTargets(int[] target, int[] sel, int batch, int seqLen, int capacity) {
        call("topKTargets", (t, task, c) -> t.task(task, ArenaKernels::topKTargets, arena, at(sel), at(target), batch, seqLen,
                capacity), target, sel, batch, seqLen, capacity);
    }

    @Override
    public void uniformScores(float[] noise, long draw, int layer, int rows) {
        Call c = call("uniformScores", 4, true, (t, task, k) -> t.task(task, ArenaKernels::uniformScores, arena, k.section.input, k.inputAt,
                at(noise), layer, rows), noise, layer, rows);
        setDraw(c, draw);
    }

    @Override
    public void gaussianScores(float[] noise, long draw, int layer, int rows) {
        Call c = call("gaussianScores", 4, true, (t, task, k) -> t.task(task, ArenaKernels::gaussianScores, arena, k.section.input, k.inputAt,
                at(noise), layer, rows), noise, layer, rows);
        setDraw(c, draw);
    }

    // a call's input: the draw's 64 bits in four 16-bit pieces (floats hold them exactly)
    private void setDraw(Call c, long draw) {
        if (!tracing) {
            for (int i = 0; i < 4; i++) {
                c.section.input.set(c.inputAt + i, (draw >>> (16 * i)) & 0xffff);
            }
        }
    }

    @Override
    public void expertProbabilities(float[] p, float[] logits, int expert, int rows, int experts) {
        call("expertProbabilities", (t, task, c) -> t.task(task, ArenaKernels::expertProbabilities, arena, at(p), at(logits), expert,
                rows, experts), p, logits, expert, rows, experts);
    }

    @Override
    public void expertProbabilitiesBackward(float[] dlogits, float[] dp, float[] logits, int expert, int rows, int experts) {
        call("expertProbabilitiesBackward", (t, task, c) -> t.task(task, ArenaKernels::expertProbabilitiesBackward, arena, at(dlogits),
                at(dp), at(logits), expert, rows, experts), dlogits, dp, logits, expert, rows, experts);
    }

    @Override
    public void gather(float[] xs, float[] x, int[] sel, int batch, int seqLen, int capacity, int d) {
        call("gather", (t, task, c) -> t.task(task, ArenaKernels::gather, arena, at(x), at(sel), at(xs), batch, seqLen, capacity, d),
                xs, x, sel, batch, seqLen, capacity, d);
    }

    @Override
    public void gatherBackward(float[] dx, float[] dxs, int[] sel, int batch, int seqLen, int capacity, int d) {
        call("gatherBackward", (t, task, c) -> t.task(task, ArenaKernels::gatherBackward, arena, at(dx), at(dxs), at(sel), batch,
                seqLen, capacity, d), dx, dxs, sel, batch, seqLen, capacity, d);
    }

    @Override
    public void scatter(float[] x, float[] f, int[] sel, float[] r, RouterWeighting weighting, int batch, int seqLen, int capacity,
                        int d) {
        int sigmoid = weighting == RouterWeighting.SIGMOID ? 1 : 0;
        call("scatter", (t, task, c) -> t.task(task, ArenaKernels::scatter, arena, at(x), at(f), at(sel), at(r), batch, seqLen,
                capacity, d, sigmoid), x, f, sel, r, batch, seqLen, capacity, d, sigmoid);
    }

    @Override
    public void scatterBackward(float[] df, float[] dr, float[] dx, float[] f, int[] sel, float[] r, RouterWeighting weighting,
                                int batch, int seqLen, int capacity, int d) {
        int sigmoid = weighting == RouterWeighting.SIGMOID ? 1 : 0;
        call("scatterBackward", (t, task, c) -> t.task(task, ArenaKernels::scatterBackward, arena, at(df), at(dr), at(dx), at(f),
                at(sel), at(r), batch, seqLen, capacity, d, sigmoid), df, dr, dx, f, sel, r, batch, seqLen, capacity, d, sigmoid);
    }

    @Override
    public void crossEntropy(double[] losses, int slot, float[] logits, int[] targets, int rows, int vocab) {
        call("crossEntropy", (t, task, c) -> t.task(task, ArenaKernels::crossEntropy, arena, at(logits), at(targets), at(rowLoss),
                rows, vocab), logits, targets, rows, vocab);
        mean(losses, slot, rows);
    }

    // losses[slot] = the mean of rowLoss[rows]
    private void mean(double[] losses, int slot, int rows) {
        call("mean", (t, task, c) -> t.task(task, ArenaKernels::mean, arena, at(rowLoss), at(losses) + slot, rows), losses, slot, rows);
    }

    @Override
    public void crossEntropyBackward(float[] dlogits, float[] probs, int[] targets, int rows, int vocab, float scale) {
        if (dlogits != probs) {
            copy(dlogits, probs, rows * vocab);
        }
        call("crossEntropyBackward", (t, task, c) -> t.task(task, ArenaKernels::crossEntropyBackward, arena, at(dlogits), at(targets),
                rows, vocab, scale), dlogits, targets, rows, vocab, scale);
    }

    @Override
    public void binaryCrossEntropy(double[] losses, int slot, float[] z, int[] y, int rows) {
        call("binaryCrossEntropy", (t, task, c) -> t.task(task, ArenaKernels::binaryCrossEntropy, arena, at(z), at(y), at(rowLoss),
                rows), z, y, rows);
        mean(losses, slot, rows);
    }

    @Override
    public void binaryCrossEntropyBackward(float[] dz, float[] z, int[] y, int rows, float weight) {
        call("binaryCrossEntropyBackward", (t, task, c) -> t.task(task, ArenaKernels::binaryCrossEntropyBackward, arena, at(z), at(y),
                at(dz), rows, weight), dz, z, y, rows, weight);
    }

    @Override
    public void predictorLogits(float[] z, float[] hidden, float[] w2, int rows, int p) {
        call("predictorLogits", (t, task, c) -> t.task(task, ArenaKernels::predictorLogits, arena, at(z), at(hidden), at(w2), rows, p),
                z, hidden, w2, rows, p);
    }

    @Override
    public void predictorLogitsBackward(float[] dhidden, float[] dw2, float[] dz, float[] hidden, float[] w2, int rows, int p) {
        call("predictorHiddenBackward", (t, task, c) -> t.task(task, ArenaKernels::predictorHiddenBackward, arena, at(dhidden), at(dz),
                at(hidden), at(w2), rows, p), dhidden, dz, hidden, w2, rows, p);
        call("predictorWeightBackward", (t, task, c) -> t.task(task, ArenaKernels::predictorWeightBackward, arena, at(dw2), at(dz),
                at(hidden), rows, p), dw2, dz, hidden, rows, p);
    }

    /**
     * The tensors of a set of parameters in the order the arena lays them out, one after another: the decayed ones first,
     * so that the optimizer steps every tensor of a set in two tasks (with and without decay) and the norm sums all
     * gradients in one.
     */
    private static List<String> tensorOrder(Parameters p) {
        List<String> decayed = p.names().stream().filter(n -> AdamW.decays(n, p.shape(n))).toList();
        List<String> order = new ArrayList<>(decayed);
        p.names().stream().filter(n -> !decayed.contains(n)).forEach(order::add);
        return order;
    }

    // lays the tensors of p out one after another (once the trace ends); returns their first and how many floats they hold
    private float[] contiguous(Parameters p, Map<Object, Integer> groupLength) {
        List<float[]> tensors = tensorOrder(p).stream().map(p::get).toList();
        if (tracing && !groups.contains(tensors)) {
            groups.add(tensors);
        }
        groupLength.put(tensors.get(0), tensors.stream().mapToInt(t -> t.length).sum());
        return tensors.get(0);
    }

    @Override
    public double clip(Parameters grads, double maxNorm) {
        Map<Object, Integer> lengths = new IdentityHashMap<>();
        float[] first = contiguous(grads, lengths);
        int n = lengths.get(first);
        if (partials == null) {
            partials = new float[(n + ArenaKernels.NORM_BLOCK - 1) / ArenaKernels.NORM_BLOCK];
        }
        call("sumSquares", (t, task, c) -> t.task(task, ArenaKernels::sumSquares, arena, at(first), at(partials), n), grads, partials);
        Call factor = call("clipFactor", 1, true, (t, task, c) -> t.task(task, ArenaKernels::clipFactor, arena, c.section.input, c.inputAt,
                at(partials), at(norm), partials.length), partials, norm);
        call("scale", (t, task, c) -> t.task(task, ArenaKernels::scale, arena, at(first), at(norm), n), grads, norm);
        if (tracing) {
            return 0;
        }
        factor.section.input.set(factor.inputAt, (float) maxNorm);
        download(norm);
        return norm[0];
    }

    @Override
    public void update(AdamW optimizer, Parameters params, Parameters grads, double lr) {
        Map<Object, Integer> lengths = new IdentityHashMap<>();
        float[] p = contiguous(params, lengths);
        float[] g = contiguous(grads, lengths);
        float[] m = contiguous(optimizer.m(), lengths);
        float[] v = contiguous(optimizer.v(), lengths);
        List<String> order = tensorOrder(params);
        int decayedFloats = order.stream().filter(n -> AdamW.decays(n, params.shape(n))).mapToInt(n -> params.get(n).length).sum();
        int all = lengths.get(p);
        float decay = decayedFloats == 0 ? 0f : (float) optimizer.decay(order.get(0), params.shape(order.get(0)));
        Call first = call("adamW", 3, true, (t, task, k) -> t.task(task, ArenaKernels::adamW, arena, k.section.input, k.inputAt, at(p),
                at(g), at(m), at(v), decayedFloats, decay), params, grads, optimizer, 0);
        call("adamW", 0, true, (t, task, k) -> t.task(task, ArenaKernels::adamW, arena, k.section.input, first.inputAt(),
                at(p) + decayedFloats, at(g) + decayedFloats, at(m) + decayedFloats, at(v) + decayedFloats, all - decayedFloats, 0f),
                params, grads, optimizer, 1);
        if (tracing) {
            return;
        }
        long step = optimizer.advance();
        FloatArray in = first.section.input;
        in.set(first.inputAt + ArenaKernels.LR, (float) lr);
        in.set(first.inputAt + ArenaKernels.BIAS1, (float) (1 - Math.pow(AdamW.BETA1, step)));
        in.set(first.inputAt + ArenaKernels.BIAS2, (float) (1 - Math.pow(AdamW.BETA2, step)));
        // the step ends here: its time is the step's, not the next forward's
        runCurrent();
    }

    @Override
    public void close() {
        if (plan != null) {
            try {
                plan.close();
            } catch (Exception e) {
                throw new ModException("cannot free the training pass's device memory: " + e.getMessage(), e);
            }
            plan = null;
        }
    }
}
