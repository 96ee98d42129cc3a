package dev.mod.tornado;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mod.ModException;
import dev.mod.model.LayerWeights;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.RouterWeighting;
import dev.mod.model.Tensor;
import dev.mod.plan.ForwardPass;
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
 * The MoD forward pass as TornadoVM task graphs, built once for (model, B, T): a graph for the
 * embedding, one per layer (the same stages as the CPU plan: router, top-k, gather, attention, MLP,
 * scatter or residual, as named tasks) and one for the head, in one execution plan. Weights move to the
 * device on the first run; activations pass from graph to graph on the device; each batch moves its
 * tokens in and its logits out, and the routed layers' selections and router logits only when asked.
 */
public final class TornadoForwardPlan implements ForwardPass {
    /** Per graph of the last run: bytes moved and times, when the plan was built with profiling on. */
    public record GraphProfile(String graph, int tasks, long bytesIn, long bytesOut, long kernelNanos, long transferNanos,
                               long compileNanos, Map<String, Long> taskKernelNanos) {
    }

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final java.util.regex.Pattern TRAILING_COMMA = java.util.regex.Pattern.compile(",(\\s*[}\\]])");

    private final ModelConfig config;
    private final int batch;
    private final int seqLen;
    private final int capacity;
    private final boolean profiling;
    private final List<String> graphNames = new ArrayList<>();
    private final List<Integer> graphTasks = new ArrayList<>();
    /** The routed layer whose graph has this index, for bringing its selections back after that graph. */
    private final Map<Integer, Integer> routedLayerOfGraph = new TreeMap<>();
    private final TornadoExecutionPlan plan;

    // Device buffers: the activations shared by every graph, then the per-layer routing buffers.
    private final IntArray tokens;
    private final FloatArray x;
    private final FloatArray normed;
    private final FloatArray q;
    private final FloatArray k;
    private final FloatArray v;
    private final FloatArray attention;
    private final FloatArray attnOut;
    private final FloatArray h;
    private final FloatArray gate;
    private final FloatArray up;
    private final FloatArray mlpOut;
    private final FloatArray delta;
    private final FloatArray ropeCos;
    private final FloatArray ropeSin;
    private final FloatArray logitsDevice;
    private final Map<Integer, FloatArray> routerDevice = new TreeMap<>();
    private final Map<Integer, IntArray> selectedDevice = new TreeMap<>();

    // Host copies of the outputs.
    private final float[] logits;
    private final Map<Integer, float[]> router = new TreeMap<>();
    private final Map<Integer, int[]> selected = new TreeMap<>();
    private boolean wantRouting = true;
    private final List<GraphProfile> lastProfile = new ArrayList<>();

    public TornadoForwardPlan(Model model, int batch, int seqLen) {
        this(model, batch, seqLen, false, null);
    }

    public TornadoForwardPlan(Model model, int batch, int seqLen, boolean profiling) {
        this(model, batch, seqLen, profiling, null);
    }

    /**
     * @param profiling whether runs record TornadoVM's profile (bytes moved, kernel and transfer times)
     * @param device    "B:D" (backend and device index, as `mod devices` lists them), or null for TornadoVM's default
     */
    public TornadoForwardPlan(Model model, int batch, int seqLen, boolean profiling, String device) {
        ModelConfig c = model.config();
        if (batch < 1 || seqLen < 1) {
            throw new ModException("batch and sequence length must be at least 1");
        }
        if (seqLen > c.maxSeqLen()) {
            throw new ModException("sequence length " + seqLen + " is above the model's max_seq_len " + c.maxSeqLen());
        }
        this.config = c;
        this.batch = batch;
        this.seqLen = seqLen;
        this.capacity = c.capacityTokens(seqLen);
        this.profiling = profiling;
        int rows = batch * seqLen;
        int d = c.dim();
        int qDim = c.nHeads() * c.headDim();
        tokens = new IntArray(rows);
        x = new FloatArray(rows * d);
        normed = new FloatArray(rows * d);
        q = new FloatArray(rows * qDim);
        k = new FloatArray(rows * c.kvDim());
        v = new FloatArray(rows * c.kvDim());
        attention = new FloatArray(rows * qDim);
        attnOut = new FloatArray(rows * d);
        h = new FloatArray(rows * d);
        gate = new FloatArray(rows * c.hiddenDim());
        up = new FloatArray(rows * c.hiddenDim());
        mlpOut = new FloatArray(rows * d);
        delta = new FloatArray(rows * d);
        logitsDevice = new FloatArray(rows * c.vocabSize());
        int half = c.headDim() / 2;
        ropeCos = new FloatArray(seqLen * half);
        ropeSin = new FloatArray(seqLen * half);
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
        for (int layer = 0; layer < c.nLayers(); layer++) {
            if (c.isRouted(layer)) {
                routedLayerOfGraph.put(specs.size(), layer);
            }
            specs.add(layerGraph(model, layer));
        }
        specs.add(headGraph(model));
        specs.forEach(spec -> {
            graphNames.add(spec.name);
            graphTasks.add(spec.tasks.size());
        });
        TornadoExecutionPlan built = new TornadoExecutionPlan(build(specs));
        GridScheduler grids = new GridScheduler();
        for (GraphSpec spec : specs) {
            spec.grids.forEach((task, grid) -> grids.addWorkerGrid(spec.name + "." + task, grid));
        }
        built.withGridScheduler(grids);
        if (profiling) {
            built.withProfiler(ProfilerMode.SILENT);
        }
        if (device != null) {
            built.withDevice(TornadoDevices.device(device));
        }
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
            if (!spec.everyRunOut.isEmpty()) {
                g.transferToHost(DataTransferMode.EVERY_EXECUTION, spec.everyRunOut.toArray());
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
                .task(t -> t.task("embed", TornadoKernels::embed, tokens, embeddings, x, rows, config.dim()), tokens, embeddings, x);
        g.everyRunIn.add(tokens);
        return g;
    }

    /** Adds out[rows, outDim] = x[rows, in] . w[outDim, in]^T as a tiled-GEMM task with its grid. */
    private static void matmul(GraphSpec g, String task, FloatArray x, FloatArray w, FloatArray out, int rows, int in, int outDim) {
        g.task(task, grid(rows, outDim),
                t -> t.task(task, TornadoKernels::matmulTiled, new KernelContext(), x, w, out, rows, in, outDim), x, w, out);
    }

    /** Adds out[rows, d] = RMSNorm(x) * w as a task with one work-group per row. */
    private static void rmsnorm(GraphSpec g, String task, FloatArray x, FloatArray w, FloatArray out, int rows, int d, float eps) {
        WorkerGrid grid = new WorkerGrid1D(rows * TornadoKernels.ROW_GROUP);
        grid.setLocalWork(TornadoKernels.ROW_GROUP, 1, 1);
        g.task(task, grid, t -> t.task(task, TornadoKernels::rmsnorm, new KernelContext(), x, w, out, rows, d, eps), x, w, out);
    }

    /** The grid of matmulTiled for out[rows, outDim]: TILE x TILE work-groups covering the output. */
    private static WorkerGrid grid(int rows, int outDim) {
        int tile = TornadoKernels.TILE;
        WorkerGrid grid = new WorkerGrid2D((outDim + tile - 1) / tile * tile, (rows + tile - 1) / tile * tile);
        grid.setLocalWork(tile, tile, 1);
        return grid;
    }

    /** 0 .. T-1 in every row of the batch: the positions of a dense layer's rows. */
    private IntArray densePositions() {
        IntArray positions = new IntArray(batch * seqLen);
        for (int r = 0; r < batch * seqLen; r++) {
            positions.set(r, r % seqLen);
        }
        return positions;
    }

    /** A tensor as F32 in TornadoVM's off-heap array, to be moved to the device on the first run. */
    private static FloatArray floats(Tensor t) {
        FloatArray a = new FloatArray(Math.toIntExact(t.numel()));
        for (int i = 0; i < a.getSize(); i++) {
            a.set(i, t.get(i));
        }
        return a;
    }

    private GraphSpec layerGraph(Model model, int layer) {
        ModelConfig c = config;
        LayerWeights w = model.layer(layer);
        GraphSpec g = new GraphSpec("layer" + layer);
        int d = c.dim();
        int dh = c.headDim();
        int qDim = c.nHeads() * dh;
        int f = c.hiddenDim();
        boolean routed = c.isRouted(layer);
        int n = routed ? capacity : seqLen;
        int rows = batch * n;
        float eps = (float) c.normEps();
        FloatArray attentionNorm = floats(w.attentionNorm());
        FloatArray wq = floats(w.wq());
        FloatArray wk = floats(w.wk());
        FloatArray wv = floats(w.wv());
        FloatArray wo = floats(w.wo());
        FloatArray ffnNorm = floats(w.ffnNorm());
        FloatArray w1 = floats(w.w1());
        FloatArray w2 = floats(w.w2());
        FloatArray w3 = floats(w.w3());
        // The gathered rows of a routed layer and the positions of a dense layer are the layer's own:
        // buffers are handed only from one graph to the next, and these skip the layers of the other kind.
        FloatArray in = x;
        IntArray pos = densePositions();
        FloatArray r = null;
        IntArray sel = null;
        if (routed) {
            FloatArray routerWeight = floats(w.router());
            FloatArray logitsOfRouter = new FloatArray(batch * seqLen);
            IntArray rank = new IntArray(batch * seqLen);
            IntArray chosen = new IntArray(batch * capacity);
            FloatArray selectedX = new FloatArray(batch * capacity * d);
            routerDevice.put(layer, logitsOfRouter);
            selectedDevice.put(layer, chosen);
            router.put(layer, new float[batch * seqLen]);
            selected.put(layer, new int[batch * capacity]);
            g.task(t -> t.task("router", TornadoKernels::routerLogits, x, routerWeight, logitsOfRouter, batch * seqLen, d),
                            x, routerWeight, logitsOfRouter)
                    .task(t -> t.task("topk.rank", TornadoKernels::topKRank, logitsOfRouter, rank, batch, seqLen),
                            logitsOfRouter, rank)
                    .task(t -> t.task("topk.select", TornadoKernels::topKCompact, rank, chosen, batch, seqLen, capacity),
                            rank, chosen)
                    .task(t -> t.task("gather", TornadoKernels::gather, x, chosen, selectedX, batch, seqLen, capacity, d),
                            x, chosen, selectedX);
            g.onDemandOut.add(chosen);
            g.onDemandOut.add(logitsOfRouter);
            in = selectedX;
            pos = chosen;
            r = logitsOfRouter;
            sel = chosen;
        }
        FloatArray blockIn = in;
        IntArray blockPos = pos;
        rmsnorm(g, "attention.norm", blockIn, attentionNorm, normed, rows, d, eps);
        matmul(g, "attention.q", normed, wq, q, rows, d, qDim);
        matmul(g, "attention.k", normed, wk, k, rows, d, c.kvDim());
        matmul(g, "attention.v", normed, wv, v, rows, d, c.kvDim());
        g.task(t -> t.task("attention.rope_q", TornadoKernels::rope, q, blockPos, ropeCos, ropeSin, rows, c.nHeads(), dh),
                        q, blockPos, ropeCos, ropeSin)
                .task(t -> t.task("attention.rope_k", TornadoKernels::rope, k, blockPos, ropeCos, ropeSin, rows, c.nKvHeads(), dh),
                        k, blockPos, ropeCos, ropeSin)
                .task(t -> t.task("attention.softmax", TornadoKernels::attention, q, k, v, attention, batch, n, c.nHeads(),
                        c.nKvHeads(), dh), q, k, v, attention);
        matmul(g, "attention.out", attention, wo, attnOut, rows, qDim, d);
        g.task(t -> t.task("attention.residual", TornadoKernels::add, blockIn, attnOut, h, rows * d), blockIn, attnOut, h);
        rmsnorm(g, "mlp.norm", h, ffnNorm, normed, rows, d, eps);
        matmul(g, "mlp.w1", normed, w1, gate, rows, d, f);
        matmul(g, "mlp.w3", normed, w3, up, rows, d, f);
        g.task(t -> t.task("mlp.swiglu", TornadoKernels::swiglu, gate, up, gate, rows * f), gate, up);
        matmul(g, "mlp.w2", gate, w2, mlpOut, rows, f, d);
        g.task(t -> t.task("mlp.delta", TornadoKernels::add, attnOut, mlpOut, delta, rows * d), attnOut, mlpOut, delta);
        if (routed) {
            FloatArray logitsOfRouter = r;
            IntArray chosen = sel;
            int sigmoid = c.routerWeighting() == RouterWeighting.SIGMOID ? 1 : 0;
            g.task(t -> t.task("scatter", TornadoKernels::scatter, delta, chosen, logitsOfRouter, x, batch, seqLen, capacity, d,
                    sigmoid), delta, chosen, logitsOfRouter, x);
        } else {
            g.task(t -> t.task("residual", TornadoKernels::add, x, delta, x, rows * d), x, delta);
        }
        return g;
    }

    private GraphSpec headGraph(Model model) {
        int rows = batch * seqLen;
        FloatArray norm = floats(model.finalNorm());
        FloatArray output = floats(model.output());
        float eps = (float) config.normEps();
        GraphSpec g = new GraphSpec("head");
        rmsnorm(g, "norm", x, norm, normed, rows, config.dim(), eps);
        matmul(g, "logits", normed, output, logitsDevice, rows, config.dim(), config.vocabSize());
        g.everyRunOut.add(logitsDevice);
        return g;
    }

    /** Whether runs bring the routed layers' selections and router logits back to the host (default: yes). */
    public TornadoForwardPlan withRoutingOutputs(boolean want) {
        wantRouting = want;
        return this;
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
        for (int g = 0; g < graphNames.size(); g++) {
            TornadoExecutionResult result = plan.withGraph(g).execute();
            if (profiling) {
                TornadoProfilerResult p = result.getProfilerResult();
                lastProfile.add(new GraphProfile(graphNames.get(g), graphTasks.get(g), p.getTotalBytesCopyIn(), p.getTotalBytesCopyOut(),
                        p.getDeviceKernelTime(), p.getDataTransfersTime(), p.getCompileTime(),
                        taskKernelNanos(graphNames.get(g), p.getProfileLog())));
            }
            Integer layer = routedLayerOfGraph.get(g);
            if (wantRouting && layer != null) {
                result.transferToHost(selectedDevice.get(layer), routerDevice.get(layer));
                copy(selectedDevice.get(layer), selected.get(layer));
                copy(routerDevice.get(layer), router.get(layer));
            }
        }
        MemorySegment.copy(logitsDevice.getSegment(), ValueLayout.JAVA_FLOAT, 0, logits, 0, logits.length);
    }

    /**
     * Kernel time per task of the last run, from TornadoVM's profile log: a JSON object per run, appended,
     * each holding "graph.task": {"TASK_KERNEL_TIME": nanoseconds}.
     */
    private static Map<String, Long> taskKernelNanos(String graph, String log) {
        Map<String, Long> times = new java.util.LinkedHashMap<>();
        // TornadoVM 5.2.1 leaves a comma before some closing braces; strict JSON readers reject it.
        String json = TRAILING_COMMA.matcher(log).replaceAll("$1");
        try (MappingIterator<JsonNode> runs = JSON.readerFor(JsonNode.class).readValues(json)) {
            JsonNode last = null;
            while (runs.hasNext()) {
                last = runs.next();
            }
            if (last != null) {
                last.path(graph).fields().forEachRemaining(e -> {
                    if (e.getValue().has("TASK_KERNEL_TIME")) {
                        times.put(e.getKey().substring(graph.length() + 1), e.getValue().get("TASK_KERNEL_TIME").asLong());
                    }
                });
            }
        } catch (java.io.IOException e) {
            throw new ModException("tornado: unreadable profile log: " + e.getMessage(), e);
        }
        return times;
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

    @Override
    public Long hostDeviceBytes() {
        return profiling ? lastProfile.stream().mapToLong(p -> p.bytesIn() + p.bytesOut()).sum() : null;
    }

    @Override
    public ModelConfig config() {
        return config;
    }

    @Override
    public int batch() {
        return batch;
    }

    @Override
    public int seqLen() {
        return seqLen;
    }

    @Override
    public int capacity() {
        return capacity;
    }

    @Override
    public String backend() {
        return "tornado";
    }

    @Override
    public float[] logits() {
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
        return s;
    }

    @Override
    public float[] routerLogits(int layer) {
        float[] r = router.get(layer);
        if (r == null) {
            throw new ModException("layer " + layer + " is not routed");
        }
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
