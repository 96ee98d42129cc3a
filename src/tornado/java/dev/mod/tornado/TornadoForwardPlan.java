package dev.mod.tornado;

import dev.mod.ModException;
import dev.mod.model.LayerWeights;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.RouterWeighting;
import dev.mod.model.Tensor;
import dev.mod.plan.ForwardPass;
import dev.mod.plan.PlanShape;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.ImmutableTaskGraph;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.TornadoExecutionResult;
import uk.ac.manchester.tornado.api.TornadoProfilerResult;
import uk.ac.manchester.tornado.api.WorkerGrid;
import uk.ac.manchester.tornado.api.WorkerGrid1D;
import uk.ac.manchester.tornado.api.WorkerGrid2D;
import uk.ac.manchester.tornado.api.WorkerGrid3D;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.common.TornadoFunctions.Task15;
import uk.ac.manchester.tornado.api.enums.TornadoDeviceType;
import uk.ac.manchester.tornado.api.runtime.TornadoRuntimeProvider;
import uk.ac.manchester.tornado.api.enums.DataTransferMode;
import uk.ac.manchester.tornado.api.enums.ProfilerMode;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The MoD forward pass as TornadoVM task graphs, built once for (model, B, T) from its {@link PlanShape}
 * (the shape the cpu plan's stages follow too): a graph for the embedding, one per layer and one for the
 * head, in one execution plan. A dense layer is 8 launches:
 * attention.norm, attention.qkv (one product against the q/k/v weights concatenated when the plan is
 * built), attention.rope (q and k), attention (flash-style), attention.out, mlp.norm (which adds the
 * attention output to the block input: the residual is never stored), mlp.w13 (w1 and w3 as one product
 * with SwiGLU in its epilogue) and mlp.w2 (whose epilogue adds the attention output and the MLP output to the
 * residual stream). A routed layer adds router, topk.rank and topk.select in front, reads its picked rows in
 * place through the selection (no gathered copy), and mlp.w2 scatters x += g(r) * f into the picked rows.
 * Weights move to the device on the first run; activations pass from graph to graph on the device; a run
 * moves only its tokens in. The logits and the routed layers' selections and router logits stay on the
 * device until asked for: logits() brings them over on its first call after a run, and the routing outputs come
 * over after their layer's graph unless keepRoutingOutputs(false) (timing runs).
 */
public final class TornadoForwardPlan implements ForwardPass {
    /** Per graph of the last run: bytes moved and times, when the plan was built with profiling on. */
    public record GraphProfile(String graph, int tasks, long bytesIn, long bytesOut, long kernelNanos, long transferNanos,
                               long compileNanos, Map<String, Long> taskKernelNanos) {
    }

    private final ModelConfig config;
    private final PlanShape shape;
    private final int batch;
    private final int seqLen;
    private final int capacity;
    private final boolean profiling;
    private final List<String> graphNames = new ArrayList<>();
    private final List<Integer> graphTasks = new ArrayList<>();
    /** The routed layer whose graph has this index. */
    private final Map<Integer, Integer> routedLayerOfGraph = new TreeMap<>();
    private final TornadoExecutionPlan plan;
    private final TornadoDevice device;
    private final boolean cpuDevice;
    private final TornadoPlacement placement;
    /** Bytes of every buffer the plan keeps on the device. */
    private long deviceBytes;

    // Device buffers: the activations shared by every graph, then the per-layer routing buffers.
    private final IntArray tokens;
    private final FloatArray x;
    private final FloatArray normed;
    private final FloatArray qkv;
    private final FloatArray attention;
    private final FloatArray attnOut;
    private final FloatArray hidden;
    private final FloatArray ropeCos;
    private final FloatArray ropeSin;
    private final FloatArray logitsDevice;
    private final Map<Integer, FloatArray> routerDevice = new TreeMap<>();
    private final Map<Integer, IntArray> selectedDevice = new TreeMap<>();

    // Host copies of the outputs, filled on demand after each run.
    private final float[] logits;
    private final Map<Integer, float[]> router = new TreeMap<>();
    private final Map<Integer, int[]> selected = new TreeMap<>();
    /** The head graph's result of the last run, through which logits() brings the logits over; null before a run. */
    private TornadoExecutionResult headResult;
    private boolean logitsFetched;
    private long fetchedBytes;
    private boolean routingOutputs = true;
    private final List<GraphProfile> lastProfile = new ArrayList<>();

    public TornadoForwardPlan(Model model, int batch, int seqLen) {
        this(model, batch, seqLen, false, null);
    }

    public TornadoForwardPlan(Model model, int batch, int seqLen, boolean profiling) {
        this(model, batch, seqLen, profiling, null);
    }

    /**
     * @param profiling  whether runs record TornadoVM's profile (bytes moved, kernel and transfer times)
     * @param deviceName "B:D" (backend and device index, as `mod devices` lists them), or null for
     *                   tornado-config's mod.tornado.device, else TornadoVM's default
     */
    public TornadoForwardPlan(Model model, int batch, int seqLen, boolean profiling, String deviceName) {
        ModelConfig c = model.config();
        this.shape = PlanShape.of(c, batch, seqLen);
        if (c.headDim() > AttentionKernels.MAX_HEAD_DIM || c.headDim() % 2 != 0) {
            throw new ModException("the tornado backend takes even head sizes up to " + AttentionKernels.MAX_HEAD_DIM
                    + ", this model's is " + c.headDim());
        }
        this.config = c;
        this.batch = batch;
        this.seqLen = seqLen;
        this.capacity = shape.capacity();
        this.profiling = profiling;
        this.placement = TornadoPlacement.read(System.getProperties());
        String chosen = deviceName != null ? deviceName : placement.device();
        this.device = chosen != null ? TornadoDevices.device(chosen, deviceName != null ? "device" : "tornado-config: " + TornadoPlacement.PREFIX + "device")
                : TornadoRuntimeProvider.getTornadoRuntime().getDefaultDevice();
        this.cpuDevice = device.getDeviceType() == TornadoDeviceType.CPU;
        int rows = shape.rows();
        int d = c.dim();
        int qDim = c.nHeads() * c.headDim();
        tokens = ints(rows);
        x = floats(rows * d);
        normed = floats(rows * d);
        qkv = floats(rows * (qDim + 2 * c.kvDim()));
        attention = floats(rows * qDim);
        attnOut = floats(rows * d);
        hidden = floats(rows * c.hiddenDim());
        logitsDevice = floats(rows * c.vocabSize());
        int half = c.headDim() / 2;
        ropeCos = floats(seqLen * half);
        ropeSin = floats(seqLen * half);
        for (int p = 0; p < seqLen; p++) {
            for (int j = 0; j < half; j++) {
                double angle = p * Math.pow(c.ropeTheta(), -2.0 * j / c.headDim());
                ropeCos.set(p * half + j, (float) Math.cos(angle));
                ropeSin.set(p * half + j, (float) Math.sin(angle));
            }
        }
        logits = new float[rows * c.vocabSize()];

        List<GraphSpec> specs = new ArrayList<>();
        specs.add(embeddingGraph(model));
        for (PlanShape.Layer layer : shape.layers()) {
            if (layer.routed()) {
                routedLayerOfGraph.put(specs.size(), layer.index());
            }
            specs.add(layerGraph(model, layer));
        }
        specs.add(headGraph(model));
        placement.check(System.getProperties(), specs);
        checkDeviceMemory();
        GridScheduler grids = new GridScheduler();
        for (GraphSpec spec : specs) {
            graphNames.add(spec.name);
            graphTasks.add(spec.tasks.size());
            spec.grids.forEach((task, grid) -> grids.addWorkerGrid(spec.name + "." + task, grid));
        }
        TornadoExecutionPlan built = new TornadoExecutionPlan(build(specs));
        built.withGridScheduler(grids);
        if (profiling) {
            built.withProfiler(ProfilerMode.SILENT);
        }
        built.withDevice(device);
        plan = built;
    }

    /**
     * Task graphs from specs: a buffer moves to the device once, in the first graph that uses it (tokens
     * every run); the next graph consumes it from there; a graph persists the buffers a later graph uses.
     */
    private static ImmutableTaskGraph[] build(List<GraphSpec> specs) {
        Map<Object, String> lastUser = new java.util.IdentityHashMap<>();
        ImmutableTaskGraph[] graphs = new ImmutableTaskGraph[specs.size()];
        for (int i = 0; i < specs.size(); i++) {
            GraphSpec spec = specs.get(i);
            TaskGraph g = new TaskGraph(spec.name);
            if (!spec.everyRunIn.isEmpty()) {
                g.transferToDevice(DataTransferMode.EVERY_EXECUTION, spec.everyRunIn.toArray());
            }
            List<Object> firstUse = new ArrayList<>();
            for (Object buffer : spec.buffers) {
                String from = lastUser.get(buffer);
                if (from != null && !from.equals(specs.get(i - 1).name)) {
                    // Seen with TornadoVM 5.2.1: consuming from a graph other than the previous one finds no buffer.
                    throw new IllegalStateException(spec.name + " uses a buffer last used by " + from
                            + ": buffers must pass from each graph to the next");
                }
                if (from != null) {
                    g.consumeFromDevice(from, buffer);
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
                lastUser.put(buffer, spec.name);
                boolean usedLater = specs.subList(i + 1, specs.size()).stream().anyMatch(s -> s.buffers.contains(buffer));
                if (usedLater) {
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

    private GraphSpec embeddingGraph(Model model) {
        int rows = batch * seqLen;
        FloatArray embeddings = floats(model.embeddings());
        GraphSpec g = new GraphSpec("embedding")
                .task("embed", t -> t.task("embed", TornadoKernels::embed, tokens, embeddings, x, rows, config.dim()), tokens, embeddings, x);
        g.everyRunIn.add(tokens);
        return g;
    }

    /**
     * The buffers and settings of a product's epilogue (MatmulKernels): extra, map and gains are read only
     * by the RESIDUAL epilogue, but every task names them, so tasks that do not use them pass the layer's own.
     */
    private record Epilogue(int mode, FloatArray extra, IntArray map, FloatArray gains, int width, int perSeq, int gainMode) {
    }

    /** The signature the three layouts of MatmulKernels share. */
    private interface ProductKernel extends Task15<KernelContext, FloatArray, FloatArray, FloatArray, FloatArray, IntArray, FloatArray,
            Integer, Integer, Integer, Integer, Integer, Integer, Integer, Integer> {
    }

    /** Adds out = x[rows, in] . w[outDim, in]^T with its epilogue as a product task in the layout tornado-config or the device picks. */
    private void matmul(GraphSpec g, String task, FloatArray in, FloatArray w, FloatArray out, int rows, int inDim, int outDim, Epilogue e) {
        String name = g.name + "." + task;
        String layout = placement.layoutOf(name, cpuDevice, rows);
        if (!layout.equals("rows") && placement.local().containsKey(name)) {
            throw new ModException("tornado-config: " + TornadoPlacement.PREFIX + name + ".local: the " + layout
                    + " layout's work-groups are fixed by its kernel; .local sets the rows layout's");
        }
        WorkerGrid grid;
        ProductKernel kernel;
        if (layout.equals("vector")) {
            if (rows > MatmulKernels.VECTOR_ROWS) {
                throw new ModException("tornado-config: " + TornadoPlacement.PREFIX + name + ": the vector layout takes at most "
                        + MatmulKernels.VECTOR_ROWS + " rows, this product has " + rows);
            }
            grid = new WorkerGrid1D(ceilDiv(outDim, 2 * MatmulKernels.PAIR) * MatmulKernels.PAIR * MatmulKernels.VECTOR_ITEMS);
            grid.setLocalWork(MatmulKernels.VECTOR_ITEMS, 1, 1);
            kernel = MatmulKernels::matmulVector;
        } else if (layout.equals("tiled")) {
            checkTiledFits(name);
            grid = new WorkerGrid2D(ceilDiv(outDim, MatmulKernels.TILE) * MatmulKernels.TILE_ITEMS,
                    ceilDiv(rows, MatmulKernels.TILE) * MatmulKernels.TILE_ITEMS);
            grid.setLocalWork(MatmulKernels.TILE_ITEMS, MatmulKernels.TILE_ITEMS, 1);
            kernel = MatmulKernels::matmulTiled;
        } else {
            int pairs = ceilDiv(outDim, 2 * MatmulKernels.PAIR) * MatmulKernels.PAIR;
            int local = placement.local().getOrDefault(name, (int) Math.min(64, device.getDeviceMaxWorkgroupDimensions()[0]));
            grid = new WorkerGrid2D(ceilDiv(pairs, local) * local, ceilDiv(rows, MatmulKernels.ROWS_PER_ITEM));
            grid.setLocalWork(local, 1, 1);
            kernel = MatmulKernels::matmulRows;
        }
        g.task(task, grid, t -> t.task(task, kernel, new KernelContext(), in, w, out, e.extra(), e.map(), e.gains(),
                rows, inDim, outDim, e.mode(), e.width(), seqLen, e.perSeq(), e.gainMode()), in, w, out, e.extra(), e.map(), e.gains());
        g.products.add(task);
    }

    /** The tiled layout needs 256 items per work-group and two padded tiles of local memory. */
    private void checkTiledFits(String task) {
        long items = (long) MatmulKernels.TILE_ITEMS * MatmulKernels.TILE_ITEMS;
        long localBytes = 2L * MatmulKernels.TILE_K * (MatmulKernels.TILE + 1) * Float.BYTES;
        long[] maxGroup = device.getDeviceMaxWorkgroupDimensions();
        if (maxGroup[0] * (maxGroup.length > 1 ? maxGroup[1] : 1) < items || device.getDeviceLocalMemorySize() < localBytes) {
            throw new ModException(task + ": the tiled layout needs work-groups of " + items + " items and " + localBytes
                    + " bytes of local memory, more than " + device.getPhysicalDevice().getDeviceName() + " offers; use "
                    + TornadoPlacement.PREFIX + task + ".matmul=rows");
        }
    }

    /** Adds out[rows, d] = RMSNorm(x[map rows] (+ extra)) * w as a task with one work-group per row. */
    private void rmsnorm(GraphSpec g, String task, FloatArray w, IntArray map, FloatArray extra, int add, int rows, int perSeq) {
        int d = config.dim();
        float eps = (float) config.normEps();
        WorkerGrid grid = new WorkerGrid1D(rows * TornadoKernels.ROW_GROUP);
        grid.setLocalWork(TornadoKernels.ROW_GROUP, 1, 1);
        g.task(task, grid, t -> t.task(task, TornadoKernels::rmsnorm, new KernelContext(), x, map, extra, w, normed, d, eps, seqLen, perSeq,
                add), x, map, extra, w, normed);
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    /** 0 .. T-1 in every row of the batch: the positions of a dense layer's rows. */
    private IntArray densePositions() {
        IntArray positions = ints(batch * seqLen);
        for (int r = 0; r < batch * seqLen; r++) {
            positions.set(r, r % seqLen);
        }
        return positions;
    }

    /** A tensor as F32 in TornadoVM's off-heap array, to be moved to the device on the first run. */
    private FloatArray floats(Tensor t) {
        FloatArray a = floats(Math.toIntExact(t.numel()));
        for (int i = 0; i < a.getSize(); i++) {
            a.set(i, t.get(i));
        }
        return a;
    }

    /** Weights [rows of a; rows of b; ...] concatenated: one product instead of several. */
    private FloatArray concatenated(Tensor... parts) {
        long total = 0;
        for (Tensor t : parts) {
            total += t.numel();
        }
        FloatArray a = floats(Math.toIntExact(total));
        int at = 0;
        for (Tensor t : parts) {
            for (int i = 0; i < t.numel(); i++) {
                a.set(at++, t.get(i));
            }
        }
        return a;
    }

    /**
     * w1 and w3 [F, d] as one weight [2 * F', d] (F' = F rounded up to PAIR, padding rows zero): PAIR rows of w1,
     * then the same PAIR rows of w3, in turn, as the SwiGLU epilogue reads them (MatmulKernels).
     */
    private FloatArray gateUpInterleaved(Tensor w1, Tensor w3) {
        int f = config.hiddenDim();
        int d = config.dim();
        int pair = MatmulKernels.PAIR;
        int padded = ceilDiv(f, pair) * pair;
        FloatArray a = floats(2 * padded * d);
        a.init(0f);
        for (int j = 0; j < f; j++) {
            int gateRow = (j / pair) * 2 * pair + j % pair;
            for (int i = 0; i < d; i++) {
                a.set(gateRow * d + i, w1.get((long) j * d + i));
                a.set((gateRow + pair) * d + i, w3.get((long) j * d + i));
            }
        }
        return a;
    }

    private FloatArray floats(int n) {
        deviceBytes += (long) n * Float.BYTES;
        return new FloatArray(n);
    }

    private IntArray ints(int n) {
        deviceBytes += (long) n * Integer.BYTES;
        return new IntArray(n);
    }

    private GraphSpec layerGraph(Model model, PlanShape.Layer shapeOfLayer) {
        ModelConfig c = config;
        int layer = shapeOfLayer.index();
        LayerWeights w = model.layer(layer);
        GraphSpec g = new GraphSpec("layer" + layer);
        int d = c.dim();
        int dh = c.headDim();
        int qDim = c.nHeads() * dh;
        int qkvDim = qDim + 2 * c.kvDim();
        int f = c.hiddenDim();
        boolean routed = shapeOfLayer.routed();
        int n = shapeOfLayer.rowsPerSequence();
        int rows = batch * n;
        FloatArray attentionNorm = floats(w.attentionNorm());
        FloatArray wqkv = concatenated(w.wq(), w.wk(), w.wv());
        FloatArray wo = floats(w.wo());
        FloatArray ffnNorm = floats(w.ffnNorm());
        FloatArray w13 = gateUpInterleaved(w.w1(), w.w3());
        FloatArray w2 = floats(w.w2());
        // A layer's map (a routed layer's selection, a dense layer's positions) and gains are its own buffers:
        // buffers are handed only from one graph to the next, and these skip the layers of the other kind.
        IntArray map;
        FloatArray gains;
        int gainMode;
        if (routed) {
            FloatArray routerWeight = floats(w.router());
            FloatArray logitsOfRouter = floats(batch * seqLen);
            IntArray rank = ints(batch * seqLen);
            IntArray chosen = ints(batch * capacity);
            routerDevice.put(layer, logitsOfRouter);
            selectedDevice.put(layer, chosen);
            router.put(layer, new float[batch * seqLen]);
            selected.put(layer, new int[batch * capacity]);
            g.task("router", t -> t.task("router", TornadoKernels::routerLogits, x, routerWeight, logitsOfRouter, batch * seqLen, d),
                            x, routerWeight, logitsOfRouter)
                    .task("topk.rank", t -> t.task("topk.rank", TornadoKernels::topKRank, logitsOfRouter, rank, batch, seqLen),
                            logitsOfRouter, rank)
                    .task("topk.select", t -> t.task("topk.select", TornadoKernels::topKCompact, rank, chosen, batch, seqLen, capacity),
                            rank, chosen);
            g.onDemandOut.add(chosen);
            g.onDemandOut.add(logitsOfRouter);
            map = chosen;
            gains = logitsOfRouter;
            gainMode = c.routerWeighting() == RouterWeighting.SIGMOID ? 2 : 1;
        } else {
            map = densePositions();
            gains = floats(1);
            gains.init(1f);
            gainMode = 0;
        }
        // What a task does not read still fills its slot, with a buffer of its own: TornadoVM 5.2.1's scheduler
        // loops forever on a task that names one buffer twice.
        FloatArray unused = floats(1);
        Epilogue store = new Epilogue(MatmulKernels.STORE, unused, map, gains, 0, n, gainMode);
        rmsnorm(g, "attention.norm", attentionNorm, map, unused, 0, rows, n);
        matmul(g, "attention.qkv", normed, wqkv, qkv, rows, d, qkvDim, store);
        int ropeHeads = c.nHeads() + c.nKvHeads();
        g.task("attention.rope", t -> t.task("attention.rope", TornadoKernels::rope, qkv, map, ropeCos, ropeSin, rows, ropeHeads, qkvDim, dh),
                qkv, map, ropeCos, ropeSin);
        WorkerGrid attentionGrid = new WorkerGrid3D(ceilDiv(n, AttentionKernels.QUERIES) * AttentionKernels.QUERIES, c.nHeads(), batch);
        attentionGrid.setLocalWork(AttentionKernels.QUERIES, 1, 1);
        g.task("attention", attentionGrid, t -> t.task("attention", AttentionKernels::attention, new KernelContext(), qkv, attention, n,
                c.nHeads(), c.nKvHeads(), dh), qkv, attention);
        matmul(g, "attention.out", attention, wo, attnOut, rows, qDim, d, store);
        rmsnorm(g, "mlp.norm", ffnNorm, map, attnOut, 1, rows, n);
        int gateUp = 2 * ceilDiv(f, MatmulKernels.PAIR) * MatmulKernels.PAIR;
        matmul(g, "mlp.w13", normed, w13, hidden, rows, d, gateUp, new Epilogue(MatmulKernels.SWIGLU, attnOut, map, gains, f, n, gainMode));
        matmul(g, "mlp.w2", hidden, w2, x, rows, f, d, new Epilogue(MatmulKernels.RESIDUAL, attnOut, map, gains, d, n, gainMode));
        return g;
    }

    private GraphSpec headGraph(Model model) {
        int rows = batch * seqLen;
        FloatArray norm = floats(model.finalNorm());
        FloatArray output = floats(model.output());
        IntArray positions = densePositions();
        FloatArray unused = floats(1);
        FloatArray noGains = floats(1);
        GraphSpec g = new GraphSpec("head");
        rmsnorm(g, "norm", norm, positions, unused, 0, rows, seqLen);
        matmul(g, "logits", normed, output, logitsDevice, rows, config.dim(), config.vocabSize(),
                new Epilogue(MatmulKernels.STORE, unused, positions, noGains, 0, seqLen, 0));
        g.onDemandOut.add(logitsDevice);
        return g;
    }

    /**
     * The plan's buffers against the device: all of them within its global memory and TornadoVM's limit
     * (tornado.device.memory, 4 GB unless set), the largest within one allocation.
     */
    private void checkDeviceMemory() {
        String name = device.getPhysicalDevice().getDeviceName();
        long global = device.getPhysicalDevice().getDeviceGlobalMemorySize();
        if (deviceBytes > global) {
            throw new ModException("the plan needs " + mib(deviceBytes) + " of device memory; " + name + " has " + mib(global));
        }
        long largest = (long) Math.max(logitsDevice.getSize(), (long) config.vocabSize() * config.dim()) * Float.BYTES;
        if (largest > device.getMaxAllocMemory()) {
            throw new ModException("the plan's largest buffer is " + mib(largest) + "; " + name + " allocates at most " + mib(device.getMaxAllocMemory())
                    + " at once");
        }
        long limit = TornadoMemoryLimit.bytes();
        if (deviceBytes > limit) {
            throw new ModException("the plan needs " + mib(deviceBytes) + " of device memory, above TornadoVM's limit of " + mib(limit)
                    + ": set tornado.device.memory (for example " + ceilDiv((int) (deviceBytes >> 20), 1024) + "GB) in tornado-config");
        }
    }

    private static String mib(long bytes) {
        return String.format(java.util.Locale.ROOT, "%.1f MiB", bytes / 1048576.0);
    }

    /** Bytes the plan keeps on the device: weights, activations, routing buffers. */
    public long deviceBytes() {
        return deviceBytes;
    }

    @Override
    public void run(int[][] batchTokens) {
        ForwardPass.checkBatch(batchTokens, batch, seqLen, config.vocabSize());
        for (int b = 0; b < batch; b++) {
            for (int t = 0; t < seqLen; t++) {
                tokens.set(b * seqLen + t, batchTokens[b][t]);
            }
        }
        lastProfile.clear();
        headResult = null;
        logitsFetched = false;
        fetchedBytes = 0;
        for (int g = 0; g < graphNames.size(); g++) {
            TornadoExecutionResult result = plan.withGraph(g).execute();
            if (profiling) {
                TornadoProfilerResult p = result.getProfilerResult();
                lastProfile.add(new GraphProfile(graphNames.get(g), graphTasks.get(g), p.getTotalBytesCopyIn(), p.getTotalBytesCopyOut(),
                        p.getDeviceKernelTime(), p.getDataTransfersTime(), p.getCompileTime(),
                        TornadoProfileLog.taskKernelNanos(graphNames.get(g), p.getProfileLog())));
            }
            Integer layer = routedLayerOfGraph.get(g);
            if (layer != null && routingOutputs) {
                // Right after the layer's graph: fetched after later graphs ran, TornadoVM 5.2.1 copied the wrong
                // bytes into host memory (seen as a corrupted JVM).
                result.transferToHost(selectedDevice.get(layer), routerDevice.get(layer));
                copy(selectedDevice.get(layer), selected.get(layer));
                copy(routerDevice.get(layer), router.get(layer));
                fetchedBytes += (long) selected.get(layer).length * Integer.BYTES + (long) router.get(layer).length * Float.BYTES;
            }
            if (g == graphNames.size() - 1) {
                headResult = result;
            }
        }
    }

    /**
     * Whether runs bring the routed layers' selections and router logits to the host (default: yes), right after
     * each routed layer's graph; timing runs turn it off.
     */
    @Override
    public void keepRoutingOutputs(boolean keep) {
        routingOutputs = keep;
    }

    private void checkRoutingOutputs() {
        if (!routingOutputs) {
            throw new IllegalStateException("the routing outputs stay on the device: keepRoutingOutputs(true) before the run");
        }
    }

    private static void copy(IntArray from, int[] to) {
        MemorySegment.copy(from.getSegment(), ValueLayout.JAVA_INT, 0, to, 0, to.length);
    }

    private static void copy(FloatArray from, float[] to) {
        MemorySegment.copy(from.getSegment(), ValueLayout.JAVA_FLOAT, 0, to, 0, to.length);
    }

    /** Per graph of the last run (profiling on): bytes in and out, kernel, transfer and compile time. */
    public List<GraphProfile> lastProfile() {
        return List.copyOf(lastProfile);
    }

    /** Bytes moved by the last run and by the outputs asked for since (profiling on). */
    @Override
    public Long hostDeviceBytes() {
        return profiling ? lastProfile.stream().mapToLong(p -> p.bytesIn() + p.bytesOut()).sum() + fetchedBytes : null;
    }

    @Override
    public PlanShape shape() {
        return shape;
    }

    @Override
    public String backend() {
        return "tornado";
    }

    /** logits[B, T, V] of the last run, brought from the device on the first call after a run. */
    @Override
    public float[] logits() {
        if (headResult != null && !logitsFetched) {
            headResult.transferToHost(logitsDevice);
            copy(logitsDevice, logits);
            fetchedBytes += (long) logits.length * Float.BYTES;
            logitsFetched = true;
        }
        return logits;
    }

    @Override
    public List<Integer> routedLayers() {
        return List.copyOf(selected.keySet());
    }

    @Override
    public int[] selected(int layer) {
        int[] s = selected.get(layer);
        if (s == null) {
            throw new ModException("layer " + layer + " is not routed");
        }
        checkRoutingOutputs();
        return s;
    }

    @Override
    public float[] routerLogits(int layer) {
        float[] r = router.get(layer);
        if (r == null) {
            throw new ModException("layer " + layer + " is not routed");
        }
        checkRoutingOutputs();
        return r;
    }

    @Override
    public void close() {
        try {
            plan.close();
        } catch (Exception e) {
            throw new ModException("tornado: could not release the device: " + e.getMessage(), e);
        }
    }
}
