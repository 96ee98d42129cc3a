package dev.mod.tornado;

import dev.mod.ModException;
import dev.mod.model.BlockStep;
import dev.mod.model.LayerWeights;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.RouterWeighting;
import dev.mod.model.Tensor;
import dev.mod.plan.ExpertChoice;
import dev.mod.plan.ForwardPass;
import dev.mod.plan.PlanShape;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.TornadoExecutionResult;
import uk.ac.manchester.tornado.api.WorkerGrid;
import uk.ac.manchester.tornado.api.WorkerGrid3D;
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
    /** The layer whose graph has this index, for a model with experts. */
    private final Map<Integer, Integer> expertLayerOfGraph = new TreeMap<>();
    private final TornadoExecutionPlan plan;
    private final StageTasks stages;

    // Device buffers: the activations shared by every graph, then the per-layer routing buffers.
    private final IntArray tokens;
    private final BlockTasks block;
    private final FloatArray ropeCos;
    private final FloatArray ropeSin;
    private final FloatArray logitsDevice;
    private final Map<Integer, FloatArray> routerDevice = new TreeMap<>();
    private final Map<Integer, IntArray> selectedDevice = new TreeMap<>();
    private final Map<Integer, BlockTasks.ExpertOutputs> expertsDevice = new TreeMap<>();

    // Host copies of the outputs, filled on demand after each run.
    private final float[] logits;
    private final Map<Integer, float[]> router = new TreeMap<>();
    private final Map<Integer, int[]> selected = new TreeMap<>();
    private final Map<Integer, ExpertChoice> expertChoices = new TreeMap<>();
    /** The head graph's result of the last run, through which logits() brings the logits over; null before a run. */
    private TornadoExecutionResult headResult;
    private boolean logitsFetched;
    private long fetchedBytes;
    private boolean routingOutputs = true;
    private boolean profilerOn;
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
        this.stages = new StageTasks(c, deviceName);
        this.config = c;
        this.batch = batch;
        this.seqLen = seqLen;
        this.capacity = shape.capacity();
        this.profiling = profiling;
        int rows = shape.rows();
        tokens = stages.ints(rows);
        block = new BlockTasks(c, stages, BlockTasks.buffers(c, stages, rows));
        logitsDevice = stages.floats(rows * c.vocabSize());
        FloatArray[] rope = stages.ropeTables(seqLen);
        ropeCos = rope[0];
        ropeSin = rope[1];
        logits = new float[rows * c.vocabSize()];

        List<GraphSpec> specs = new ArrayList<>();
        specs.add(embeddingGraph(model));
        for (PlanShape.Layer layer : shape.layers()) {
            if (layer.routed()) {
                routedLayerOfGraph.put(specs.size(), layer.index());
            }
            if (c.hasExperts()) {
                expertLayerOfGraph.put(specs.size(), layer.index());
            }
            specs.add(layerGraph(model.layer(layer.index()), layer));
        }
        specs.add(headGraph(model));
        stages.placement.check(System.getProperties(), specs);
        stages.checkDeviceMemory((long) logitsDevice.getSize() * Float.BYTES);
        GridScheduler grids = new GridScheduler();
        for (GraphSpec spec : specs) {
            graphNames.add(spec.name);
            graphTasks.add(spec.tasks.size());
            spec.grids.forEach((task, grid) -> grids.addWorkerGrid(spec.name + "." + task, grid));
        }
        TornadoExecutionPlan built = new TornadoExecutionPlan(GraphSpec.build(specs, GraphSpec.chain(specs)));
        built.withGridScheduler(grids);
        if (profiling) {
            built.withProfiler(ProfilerMode.SILENT);
            profilerOn = true;
        }
        built.withDevice(stages.device);
        plan = built;
    }

    private GraphSpec embeddingGraph(Model model) {
        int rows = batch * seqLen;
        FloatArray embeddings = stages.floats(model.embeddings());
        GraphSpec g = new GraphSpec("embedding")
                .task("embed", t -> t.task("embed", TornadoKernels::embed, tokens, embeddings, block.buffers().x(), rows, config.dim()), tokens,
                        embeddings, block.buffers().x());
        g.everyRunIn.add(tokens);
        return g;
    }

    /** 0 .. T-1 in every row of the batch: the positions of a dense layer's rows. */
    private IntArray densePositions() {
        IntArray positions = stages.ints(batch * seqLen);
        for (int r = 0; r < batch * seqLen; r++) {
            positions.set(r, r % seqLen);
        }
        return positions;
    }

    // The layer's steps (BlockStep): router and top-k tasks where it is routed, then the block's halves (BlockTasks)
    private GraphSpec layerGraph(LayerWeights<Tensor> w, PlanShape.Layer shapeOfLayer) {
        ModelConfig c = config;
        int layer = w.index();
        GraphSpec g = new GraphSpec("layer" + layer);
        int d = c.dim();
        int dh = c.headDim();
        int n = shapeOfLayer.rowsPerSequence();
        int rows = batch * n;
        // A layer's map (a routed layer's selection, a dense layer's positions) and gains are its own buffers:
        // buffers are handed only from one graph to the next, and these skip the layers of the other kind.
        IntArray map;
        FloatArray gains;
        FloatArray logitsOfRouter = w.routed() ? stages.floats(batch * seqLen) : null;
        if (w.routed()) {
            map = stages.ints(batch * capacity);
            gains = logitsOfRouter;
        } else {
            map = densePositions();
            gains = stages.floats(1);
            gains.init(1f);
        }
        int gainMode = !w.routed() ? 0 : c.routerWeighting() == RouterWeighting.SIGMOID ? 2 : 1;
        BlockTasks.Rows rowsOfLayer = new BlockTasks.Rows(map, gains, gainMode, stages.count(rows), rows, seqLen, n, stages.floats(1));
        FloatArray qkv = block.buffers().qkv();
        for (BlockStep step : w.steps()) {
            switch (step) {
                case ROUTER -> {
                    FloatArray routerWeight = stages.floats(w.routing().router());
                    g.task("router", t -> t.task("router", TornadoKernels::routerLogits, block.buffers().x(), routerWeight, logitsOfRouter,
                            batch * seqLen, d), block.buffers().x(), routerWeight, logitsOfRouter);
                    routerDevice.put(layer, logitsOfRouter);
                    router.put(layer, new float[batch * seqLen]);
                }
                case SELECT -> {
                    IntArray rank = stages.ints(batch * seqLen);
                    g.task("topk.rank", t -> t.task("topk.rank", TornadoKernels::topKRank, logitsOfRouter, rank, batch, seqLen),
                                    logitsOfRouter, rank)
                            .task("topk.select", t -> t.task("topk.select", TornadoKernels::topKCompact, rank, map, batch, seqLen, capacity),
                                    rank, map);
                    selectedDevice.put(layer, map);
                    selected.put(layer, new int[batch * capacity]);
                    g.onDemandOut.add(map);
                    g.onDemandOut.add(logitsOfRouter);
                }
                case ATTENTION -> block.attention(g, w.attention(), rowsOfLayer, graph -> {
                    int ropeHeads = c.nHeads() + c.nKvHeads();
                    int qkvDim = block.qkvColumns();
                    graph.task("attention.rope", t -> t.task("attention.rope", TornadoKernels::rope, qkv, map, ropeCos, ropeSin, rows,
                            ropeHeads, qkvDim, dh), qkv, map, ropeCos, ropeSin);
                    WorkerGrid grid = new WorkerGrid3D(StageTasks.ceilDiv(n, AttentionKernels.QUERIES) * AttentionKernels.QUERIES,
                            c.nHeads(), batch);
                    grid.setLocalWork(AttentionKernels.QUERIES, 1, 1);
                    graph.task("attention", grid, rowsOfRun -> { }, t -> t.task("attention", AttentionKernels::attention, new KernelContext(),
                            qkv, block.buffers().attention(), n, c.nHeads(), c.nKvHeads(), dh), qkv, block.buffers().attention());
                });
                case FEED_FORWARD -> {
                    BlockTasks.ExpertOutputs experts = block.feedForward(g, w.feedForward(), rowsOfLayer,
                            c.hasExperts() ? block.topK(batch, n) : null);
                    if (experts != null) {
                        expertsDevice.put(layer, experts);
                        expertChoices.put(layer, ExpertChoice.allocate(c.experts(), batch, n));
                        g.onDemandOut.add(experts.logits());
                        g.onDemandOut.addAll(List.of(experts.probabilities()));
                        g.onDemandOut.addAll(List.of(experts.selected()));
                    }
                }
                // the norms read the picked rows in place; the feed-forward's last product writes x back
                case GATHER, SCATTER, RESIDUAL -> { }
            }
        }
        return g;
    }

    private GraphSpec headGraph(Model model) {
        int rows = batch * seqLen;
        FloatArray norm = stages.floats(model.finalNorm());
        FloatArray output = stages.floats(model.output());
        IntArray positions = densePositions();
        FloatArray unused = stages.floats(1);
        FloatArray noGains = stages.floats(1);
        IntArray live = stages.count(rows);
        GraphSpec g = new GraphSpec("head");
        stages.rmsnorm(g, "norm", block.buffers().x(), norm, positions, unused, block.buffers().normed(), live, 0, rows, seqLen, seqLen);
        stages.matmul(g, "logits", block.buffers().normed(), output, logitsDevice, live, rows, config.dim(), config.vocabSize(),
                new StageTasks.Epilogue(MatmulKernels.STORE, unused, positions, noGains, 0, seqLen, seqLen, 0));
        g.onDemandOut.add(logitsDevice);
        return g;
    }

    /** Bytes the plan keeps on the device: weights, activations, routing buffers. */
    public long deviceBytes() {
        return stages.deviceBytes();
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
        TornadoExecutionResult last = null;
        for (int g = 0; g < graphNames.size(); g++) {
            TornadoExecutionResult result = stages.execute(plan, g, graphNames.get(g));
            if (profilerOn) {
                lastProfile.add(GraphProfile.of(graphNames.get(g), graphTasks.get(g), result));
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
            Integer expertLayer = expertLayerOfGraph.get(g);
            if (expertLayer != null && routingOutputs) {
                fetchedBytes += fetch(result, expertsDevice.get(expertLayer), expertChoices.get(expertLayer));
            }
            if (g == graphNames.size() - 1) {
                last = result;
            }
        }
        stages.checkDriver("a forward pass of " + batch + " x " + seqLen + " tokens");
        headResult = last;
    }

    /** Turns TornadoVM's profiler on or off for the next runs (plans built with profiling only). */
    @Override
    public void countTransfers(boolean count) {
        if (profiling && count != profilerOn) {
            if (count) {
                plan.withProfiler(ProfilerMode.SILENT);
            } else {
                plan.withoutProfiler();
            }
            profilerOn = count;
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

    // Brings a layer's expert choice over into its host copy, right after the layer's graph (as the routing outputs);
    // returns the bytes moved
    private static long fetch(TornadoExecutionResult result, BlockTasks.ExpertOutputs device, ExpertChoice host) {
        List<Object> buffers = new ArrayList<>(List.of(device.logits()));
        buffers.addAll(List.of(device.probabilities()));
        buffers.addAll(List.of(device.selected()));
        result.transferToHost(buffers.toArray());
        copy(device.logits(), host.logits());
        long bytes = (long) host.logits().length * Float.BYTES;
        for (int e = 0; e < host.selected().length; e++) {
            copy(device.probabilities()[e], host.probabilities()[e]);
            copy(device.selected()[e], host.selected()[e]);
            bytes += (long) host.probabilities()[e].length * Float.BYTES + (long) host.selected()[e].length * Integer.BYTES;
        }
        return bytes;
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
        return profilerOn ? lastProfile.stream().mapToLong(p -> p.bytesIn() + p.bytesOut()).sum() + fetchedBytes : null;
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

    /** The expert choices of a layer's mixture of experts in the last run. */
    @Override
    public ExpertChoice expertChoice(int layer) {
        ExpertChoice choice = expertChoices.get(layer);
        if (choice == null) {
            throw new ModException("layer " + layer + " has no experts");
        }
        checkRoutingOutputs();
        return choice;
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
