package dev.mod.tornado;

import dev.mod.ModException;
import dev.mod.model.BlockStep;
import dev.mod.model.LayerWeights;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.RouterWeighting;
import dev.mod.model.Tensor;
import dev.mod.plan.CausalPass;
import dev.mod.plan.CausalPlan;
import dev.mod.plan.RoutingRule;
import dev.mod.plan.PlanShape;
import dev.mod.plan.SequenceLengths;
import uk.ac.manchester.tornado.api.GridScheduler;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.TornadoExecutionResult;
import uk.ac.manchester.tornado.api.WorkerGrid;
import uk.ac.manchester.tornado.api.WorkerGrid1D;
import uk.ac.manchester.tornado.api.WorkerGrid2D;
import uk.ac.manchester.tornado.api.enums.ProfilerMode;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Generation's causal plan as TornadoVM task graphs, built once for (model, rule, S sequences, chunks of at most R
 * rows, a context of C tokens per sequence), the same plan the cpu backend runs stage by stage ({@link dev.mod.plan.CausalPlan}):
 * <ul>
 * <li>graphs: "init" (run once), a way in for decode steps of at most S rows ("step": moves in only the step's
 * token ids with their sequences and positions) and one for chunks of up to R rows ("chunk"), one graph per layer,
 * and the head; each run is a way in, the layers, the head;</li>
 * <li>the KV caches live on the device, allocated for the context: keys [S, Hkv * dh, C] (transposed) and values
 * [S, C, Hkv * dh] per layer; a routed layer fills only the rows of the tokens routed into it. The positions each
 * cache holds, the chunk's rows and the routing counts are in one int buffer, the state ({@link CausalLayout}),
 * that passes from graph to graph and from run to run;</li>
 * <li>a layer first decides on the device which rows it processes (routeRows: a dense layer all, a routed layer by
 * the router's logit against a threshold or by the predictor), appends them to its caches (rolling back first what
 * the host truncated since), and runs the block on those rows only: the norms read them in place, RoPE is fused
 * with the cache write, attention reads the cache (flash-decoding), and the MLP's last product scatters x +=
 * g(r) * f back into them;</li>
 * <li>a run sizes every grid to the chunk's rows (TornadoVM reads a task's grid at each launch, so nothing is
 * recompiled), and the kernels leave alone the rows past those a routed layer picked, which only the device knows;</li>
 * <li>nothing moves out until asked: logits() brings the chunk's rows of logits, routed(), routerLogits(), the counts
 * and cacheBytes() read the state, all from the head graph's result.</li>
 * </ul>
 */
public final class TornadoCausalPlan implements CausalPass {
    private final ModelConfig config;
    private final StageTasks stages;
    private final SequenceLengths lengths;
    private final int sequences;
    private final int maxRows;
    private final int context;
    private final boolean profiling;
    private final TornadoExecutionPlan plan;
    private final List<GraphSpec> specs = new ArrayList<>();
    private final int stepGraph;
    private final int chunkGraph;
    private final int firstLayerGraph;
    /** Index of each routed layer among the routed layers (its rows in the routing buffer). */
    private final Map<Integer, Integer> routedIndex = new LinkedHashMap<>();

    // Device buffers shared by the graphs.
    private final IntArray state;
    private final BlockTasks block;
    private final IntArray stepIn;
    private final IntArray chunkIn;
    private final FloatArray routing;
    private final FloatArray ropeCos;
    private final FloatArray ropeSin;
    private final FloatArray logitsDevice;

    // The host's side: the last chunk's positions, what it reads back from the device, the last run's profile.
    private final int[] positions;
    private final CausalReadBack readBack;
    private final List<GraphProfile> lastProfile = new ArrayList<>();

    /**
     * @param context    tokens each sequence may hold (1 to max_seq_len): the rows of the caches on the device
     * @param profiling  whether runs record TornadoVM's profile (bytes moved, kernel and transfer times)
     * @param deviceName "B:D", or null for tornado-config's mod.tornado.device, else TornadoVM's default
     */
    public TornadoCausalPlan(Model model, RoutingRule rule, int sequences, int maxRows, int context, boolean profiling,
                             String deviceName) {
        ModelConfig c = model.config();
        CausalPlan.requireExpertThresholds(model);
        this.config = c;
        rule.checkCausal(model);
        this.lengths = new SequenceLengths(c, sequences, maxRows, context);
        this.stages = new StageTasks(c, deviceName);
        this.sequences = sequences;
        this.maxRows = maxRows;
        this.context = context;
        this.profiling = profiling;
        int layers = c.nLayers();
        long stateSize = CausalLayout.size(sequences, maxRows, layers, context);
        long cacheFloats = (long) sequences * c.kvDim() * context;
        if (stateSize > ModelConfig.MAX_ARRAY || cacheFloats > ModelConfig.MAX_ARRAY) {
            throw new ModException("a plan for " + sequences + " sequences of " + context + " tokens needs device buffers past "
                    + ModelConfig.MAX_ARRAY + " elements; use fewer sequences or a shorter context");
        }
        PlanShape.checkActivations(c, maxRows, "a chunk of " + maxRows + " tokens");
        for (int layer : c.routedLayers()) {
            routedIndex.put(layer, routedIndex.size());
        }
        state = stages.ints((int) stateSize);
        state.init(0);
        block = new BlockTasks(c, stages, BlockTasks.buffers(c, stages, maxRows));
        stepIn = stages.ints(1 + 4 * sequences);
        chunkIn = stages.ints(1 + sequences + 3 * maxRows);
        routing = stages.floats(Math.max(1, routedIndex.size()) * maxRows);
        routing.init(0f);
        FloatArray[] rope = stages.ropeTables(context);
        ropeCos = rope[0];
        ropeSin = rope[1];
        logitsDevice = stages.floats(maxRows * c.vocabSize());
        positions = new int[maxRows];
        readBack = new CausalReadBack(c, sequences, maxRows, context, lengths, routedIndex, state, routing, logitsDevice);

        GraphSpec init = new GraphSpec("init");
        FloatArray x = block.buffers().x();
        init.task("begin", t -> t.task("begin", CausalKernels::begin, state, x), state, x);
        specs.add(init);
        stepGraph = specs.size();
        specs.add(entryGraph("step", stepIn, sequences, model));
        chunkGraph = specs.size();
        specs.add(entryGraph("chunk", chunkIn, maxRows, model));
        firstLayerGraph = specs.size();
        for (int layer = 0; layer < layers; layer++) {
            specs.add(layerGraph(model, model.layer(layer), rule));
        }
        specs.add(headGraph(model));
        Map<String, List<String>> predecessors = new LinkedHashMap<>();
        String head = specs.getLast().name;
        predecessors.put("step", List.of("init", head));
        predecessors.put("chunk", List.of("init", head));
        predecessors.put(specs.get(firstLayerGraph).name, List.of("step", "chunk"));
        for (int i = firstLayerGraph + 1; i < specs.size(); i++) {
            predecessors.put(specs.get(i).name, List.of(specs.get(i - 1).name));
        }
        stages.placement.check(System.getProperties(), specs);
        stages.checkDeviceMemory(Math.max((long) logitsDevice.getSize(), cacheFloats) * Float.BYTES);
        GridScheduler grids = new GridScheduler();
        for (GraphSpec spec : specs) {
            spec.grids.forEach((task, grid) -> grids.addWorkerGrid(spec.name + "." + task, grid));
        }
        TornadoExecutionPlan built = new TornadoExecutionPlan(GraphSpec.build(specs, predecessors));
        built.withGridScheduler(grids);
        if (profiling) {
            built.withProfiler(ProfilerMode.SILENT);
        }
        built.withDevice(stages.device);
        plan = built;
        stages.execute(plan, 0, specs.get(0).name);
        stages.checkDriver("the causal plan's first graph");
    }

    // A way in: the chunk's description into the state, its tokens' embeddings into x.
    private GraphSpec entryGraph(String name, IntArray in, int inRows, Model model) {
        FloatArray embeddings = stages.floats(model.embeddings());
        int d = config.dim();
        FloatArray x = block.buffers().x();
        WorkerGrid grid = new WorkerGrid1D(roundUp(Math.max(inRows * d, sequences), CausalKernels.GROUP));
        grid.setLocalWork(CausalKernels.GROUP, 1, 1);
        GraphSpec g = new GraphSpec(name);
        g.task("embed", grid, n -> grid.setGlobalWork(roundUp(Math.max(n * d, sequences), CausalKernels.GROUP), 1, 1),
                t -> t.task("embed", CausalKernels::embedChunk, new KernelContext(), in, state, embeddings, x, d, sequences, inRows, maxRows),
                in, state, embeddings, x);
        g.everyRunIn.add(in);
        g.own.add(embeddings);
        return g;
    }

    // The layer's steps (BlockStep): in a routed layer the router's product and the rule's decision tasks, then in every
    // layer the route task (which rows it processes: a dense layer every row) and the block's halves (BlockTasks) on them
    private GraphSpec layerGraph(Model model, LayerWeights<Tensor> w, RoutingRule rule) {
        int layer = w.index();
        GraphSpec g = new GraphSpec("layer" + layer);
        FloatArray routerLogits = null;
        Decision decision = new Decision(CausalKernels.ALL, 0f, 0, stages.floats(1), stages.floats(1), stages.floats(1), 0);
        BlockTasks.Rows rows = null;
        for (BlockStep step : w.steps()) {
            switch (step) {
                case ROUTER -> {
                    routerLogits = stages.floats(maxRows);
                    // The state's first int is the chunk's rows: the live rows of a product over the whole chunk.
                    stages.matmul(g, "router", block.buffers().x(), stages.floats(w.routing().router()), routerLogits, state, maxRows,
                            config.dim(), 1, storeOnly());
                }
                case SELECT -> decision = decision(g, model, w, rule, routerLogits);
                case ATTENTION -> {
                    Route route = routeTask(g, layer, decision);
                    rows = route.rows();
                    block.attention(g, w.attention(), rows, cacheAttention(route));
                }
                case FEED_FORWARD -> block.feedForward(g, w.feedForward(), rows, config.hasExperts() ? expertRule(model, layer, rows) : null);
                // the norms read the picked rows in place; the feed-forward's last product writes x back
                case GATHER, SCATTER, RESIDUAL -> { }
            }
        }
        return g;
    }

    /**
     * How a layer's route task decides (CausalKernels.routeRows) and what it reads: the router logits (also the gains of
     * the scatter), the predictor's hidden layer and w2; a buffer of its own in each slot the rule does not read.
     */
    private record Decision(int code, float threshold, int predictorDim, FloatArray routerLogits, FloatArray predictorHidden,
                            FloatArray predictorW2, int gainMode) {
    }

    // A routed layer's decision (RoutingRule.Device): the router's logit against a threshold, or the predictor (whose
    // product it adds)
    private Decision decision(GraphSpec g, Model model, LayerWeights<Tensor> w, RoutingRule rule, FloatArray routerLogits) {
        int gainMode = config.routerWeighting() == RouterWeighting.SIGMOID ? 2 : 1;
        RoutingRule.Device device = rule.device(model, w.index());
        return switch (device.kind()) {
            case PREDICTOR -> {
                int p = model.predictorDim();
                FloatArray hidden = stages.floats(maxRows * p);
                stages.matmul(g, "predictor", block.buffers().x(), stages.floats(w.routing().predictorW1()), hidden, state, maxRows,
                        config.dim(), p, storeOnly());
                yield new Decision(CausalKernels.PREDICTOR, 0f, p, routerLogits, hidden, stages.floats(w.routing().predictorW2()), gainMode);
            }
            case LOGIT_ABOVE -> new Decision(CausalKernels.THRESHOLD, floatBelow(device.logitThreshold()), 0, routerLogits, stages.floats(1),
                    stages.floats(1), gainMode);
            case TOP_K -> throw new IllegalStateException("a causal plan decides token by token");
        };
    }

    /** The rows a layer's block runs on, and where the route task put each in its sequence (position) and cache (slot). */
    private record Route(BlockTasks.Rows rows, IntArray pickedPos, IntArray pickedSlot) {
    }

    // route: which rows the layer processes (CausalKernels.routeRows), appended to its caches
    private Route routeTask(GraphSpec g, int layer, Decision decision) {
        int r = maxRows;
        IntArray map = stages.ints(r);
        IntArray pickedPos = stages.ints(r);
        IntArray pickedSlot = stages.ints(r);
        IntArray live = stages.ints(1);
        FloatArray gains = decision.routerLogits();
        int index = routedIndex.getOrDefault(layer, 0);
        g.task("route", t -> t.task("route", CausalKernels::routeRows, state, gains, decision.predictorHidden(), decision.predictorW2(), routing,
                live, map, pickedPos, pickedSlot, sequences, r, context, config.nLayers(), layer, index, decision.code(), decision.threshold(),
                decision.predictorDim()), state, gains, decision.predictorHidden(), decision.predictorW2(), routing, live, map, pickedPos, pickedSlot);
        return new Route(new BlockTasks.Rows(map, gains, decision.gainMode(), live, r, 0, r, stages.floats(1)), pickedPos, pickedSlot);
    }

    // attention.rope (RoPE fused with the write of k and v into the layer's caches) and attention over the caches
    private BlockTasks.AttentionCore cacheAttention(Route route) {
        ModelConfig c = config;
        int dh = c.headDim();
        int r = maxRows;
        FloatArray keys = stages.floats(sequences * c.kvDim() * context);
        FloatArray values = stages.floats(sequences * c.kvDim() * context);
        IntArray pickedPos = route.pickedPos();
        IntArray pickedSlot = route.pickedSlot();
        IntArray live = route.rows().live();
        FloatArray qkv = block.buffers().qkv();
        FloatArray attention = block.buffers().attention();
        return g -> {
            int heads = c.nHeads() + 2 * c.nKvHeads();
            WorkerGrid ropeGrid = new WorkerGrid1D(roundUp(r * heads * (dh / 2), CausalKernels.GROUP));
            ropeGrid.setLocalWork(CausalKernels.GROUP, 1, 1);
            g.task("attention.rope", ropeGrid, n -> ropeGrid.setGlobalWork(roundUp(n * heads * (dh / 2), CausalKernels.GROUP), 1, 1),
                    t -> t.task("attention.rope", CausalKernels::ropeStore, new KernelContext(), qkv, keys, values, pickedPos, pickedSlot,
                            live, ropeCos, ropeSin, c.nHeads(), c.nKvHeads(), dh, context),
                    qkv, keys, values, pickedPos, pickedSlot, live, ropeCos, ropeSin);
            WorkerGrid attentionGrid = new WorkerGrid2D(r * AttentionKernels.SPLIT, c.nHeads());
            attentionGrid.setLocalWork(AttentionKernels.SPLIT, 1, 1);
            g.task("attention", attentionGrid, n -> attentionGrid.setGlobalWork((long) n * AttentionKernels.SPLIT, c.nHeads(), 1),
                    t -> t.task("attention", AttentionKernels::cacheAttention, new KernelContext(), qkv, attention, keys, values,
                            pickedSlot, live, c.nHeads(), c.nKvHeads(), dh, context), qkv, attention, keys, values, pickedSlot, live);
        };
    }

    // The experts' causal rule in a layer: each takes the rows whose probability is above its calibrated threshold
    private BlockTasks.ExpertRule expertRule(Model model, int layer, BlockTasks.Rows rows) {
        double[] thresholds = new double[config.experts().count()];
        for (int e = 0; e < thresholds.length; e++) {
            thresholds[e] = model.calibration().expertThreshold(layer, e);
        }
        return block.thresholds(thresholds, rows.live(), maxRows);
    }

    /** The plain epilogue, with buffers of its own in the slots it does not read. */
    private StageTasks.Epilogue storeOnly() {
        return new StageTasks.Epilogue(MatmulKernels.STORE, stages.floats(1), stages.ints(1), stages.floats(1), 0, 0, maxRows, 0);
    }

    private GraphSpec headGraph(Model model) {
        int r = maxRows;
        FloatArray norm = stages.floats(model.finalNorm());
        FloatArray output = stages.floats(model.output());
        IntArray identity = stages.ints(r);
        for (int i = 0; i < r; i++) {
            identity.set(i, i);
        }
        FloatArray unused = stages.floats(1);
        GraphSpec g = new GraphSpec("head");
        stages.rmsnorm(g, "norm", block.buffers().x(), norm, identity, unused, block.buffers().normed(), state, 0, r, 0, r);
        // The routing buffer fills the product's unused gains slot: the head names it, so the routing outputs can come
        // over from the head's result (TornadoVM copied wrong bytes from an earlier graph's result once later ones ran).
        stages.matmul(g, "logits", block.buffers().normed(), output, logitsDevice, state, r, config.dim(), config.vocabSize(),
                new StageTasks.Epilogue(MatmulKernels.STORE, unused, identity, routing, 0, 0, r, 0));
        g.onDemandOut.add(logitsDevice);
        g.onDemandOut.add(state);
        g.onDemandOut.add(routing);
        return g;
    }

    /** The largest float at or below t: for every float r, r > t exactly when r > floatBelow(t). */
    static float floatBelow(double t) {
        float f = (float) t;
        return f > t ? Math.nextDown(f) : f;
    }

    private static int roundUp(int n, int to) {
        return StageTasks.ceilDiv(Math.max(n, 1), to) * to;
    }

    @Override
    public void run(int[] seq, int[] tok, int n) {
        boolean step = n <= sequences;
        IntArray in = step ? stepIn : chunkIn;
        int inRows = step ? sequences : maxRows;
        // What each sequence holds before the chunk (its caches keep only that); written before take() advances it.
        for (int s = 0; s < sequences; s++) {
            in.set(1 + s, lengths.length(s));
        }
        lengths.take(seq, tok, n, positions);
        in.set(0, n);
        for (int i = 0; i < n; i++) {
            in.set(1 + sequences + i, tok[i]);
            in.set(1 + sequences + inRows + i, seq[i]);
            in.set(1 + sequences + 2 * inRows + i, positions[i]);
        }
        readBack.starting(n);
        lastProfile.clear();
        int entry = step ? stepGraph : chunkGraph;
        execute(entry, n);
        TornadoExecutionResult last = null;
        for (int g = firstLayerGraph; g < specs.size(); g++) {
            TornadoExecutionResult result = execute(g, n);
            if (g == specs.size() - 1) {
                last = result;
            }
        }
        stages.checkDriver(step ? "a decode step of " + n + " rows" : "a chunk of " + n + " rows");
        readBack.ran(last);
    }

    private TornadoExecutionResult execute(int graph, int n) {
        GraphSpec spec = specs.get(graph);
        spec.resize(n);
        TornadoExecutionResult result = stages.execute(plan, graph, spec.name);
        if (profiling) {
            lastProfile.add(GraphProfile.of(spec.name, spec.tasks.size(), result));
        }
        return result;
    }

    @Override
    public void truncate(int s, int length) {
        lengths.truncate(s, length);
        readBack.truncated();
    }

    @Override
    public void resetCounts() {
        readBack.resetCounts();
    }

    @Override
    public int sequences() {
        return sequences;
    }

    @Override
    public int length(int s) {
        return lengths.length(s);
    }

    /** logits[n, V] of the last chunk's rows (the array holds R rows), brought from the device on the first call after a run. */
    @Override
    public float[] logits() {
        return readBack.logits();
    }

    @Override
    public int rows() {
        return readBack.rows();
    }

    @Override
    public int[] routed(int layer) {
        return readBack.routed(layer);
    }

    @Override
    public float[] routerLogits(int layer) {
        return readBack.routerLogits(layer);
    }

    @Override
    public long routedTokens(int layer) {
        return readBack.count(layer, 0);
    }

    @Override
    public long decisions(int layer) {
        return readBack.count(layer, 1);
    }

    /** The positions layer's cache holds for sequence s, in the order they came. */
    public int[] cachedPositions(int layer, int s) {
        return readBack.cachedPositions(layer, s);
    }

    @Override
    public long cacheBytes() {
        return readBack.cacheBytes();
    }

    /** Per graph of the last run (profiling on): bytes in and out, kernel, transfer and compile time. */
    public List<GraphProfile> lastProfile() {
        return List.copyOf(lastProfile);
    }

    /** Bytes moved by the last run and by the outputs asked for since (profiling on). */
    public long hostDeviceBytes() {
        return lastProfile.stream().mapToLong(p -> p.bytesIn() + p.bytesOut()).sum() + readBack.fetchedBytes();
    }

    /** Bytes the plan keeps on the device: weights, caches, activations, state. */
    public long deviceBytes() {
        return stages.deviceBytes();
    }

    @Override
    public ModelConfig config() {
        return config;
    }

    @Override
    public String backend() {
        return "tornado";
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
