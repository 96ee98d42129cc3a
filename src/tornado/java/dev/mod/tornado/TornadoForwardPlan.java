package dev.mod.tornado;

import dev.mod.ModException;
import dev.mod.model.LayerWeights;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.RouterWeighting;
import dev.mod.model.Tensor;
import dev.mod.plan.ForwardPass;
import uk.ac.manchester.tornado.api.ImmutableTaskGraph;
import uk.ac.manchester.tornado.api.TaskGraph;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.TornadoExecutionResult;
import uk.ac.manchester.tornado.api.TornadoProfilerResult;
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
    public record GraphProfile(String graph, long bytesIn, long bytesOut, long kernelNanos, long transferNanos,
                               long compileNanos) {
    }

    private final ModelConfig config;
    private final int batch;
    private final int seqLen;
    private final int capacity;
    private final boolean profiling;
    private final List<String> graphNames = new ArrayList<>();
    private final Map<Integer, Integer> graphOfLayer = new TreeMap<>();
    private final TornadoExecutionPlan plan;

    // Device buffers: the activations shared by every graph, then the per-layer routing buffers.
    private final IntArray tokens;
    private final FloatArray x;
    private final FloatArray selectedX;
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
    private final IntArray positions;
    private final FloatArray ropeCos;
    private final FloatArray ropeSin;
    private final FloatArray logitsDevice;
    private final Map<Integer, FloatArray> routerDevice = new TreeMap<>();
    private final Map<Integer, IntArray> rankDevice = new TreeMap<>();
    private final Map<Integer, IntArray> selectedDevice = new TreeMap<>();

    // Host copies of the outputs.
    private final float[] logits;
    private final Map<Integer, float[]> router = new TreeMap<>();
    private final Map<Integer, int[]> selected = new TreeMap<>();
    private boolean wantRouting = true;
    private final List<GraphProfile> lastProfile = new ArrayList<>();

    public TornadoForwardPlan(Model model, int batch, int seqLen) {
        this(model, batch, seqLen, false);
    }

    public TornadoForwardPlan(Model model, int batch, int seqLen, boolean profiling) {
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
        selectedX = new FloatArray(rows * d);
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
        positions = new IntArray(rows);
        for (int r = 0; r < rows; r++) {
            positions.set(r, r % seqLen);
        }
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

        List<ImmutableTaskGraph> graphs = new ArrayList<>();
        graphs.add(embeddingGraph(model).snapshot());
        String previous = "embedding";
        for (int layer = 0; layer < c.nLayers(); layer++) {
            TaskGraph g = layerGraph(model, layer, previous);
            graphOfLayer.put(layer, graphs.size());
            graphs.add(g.snapshot());
            previous = g.getTaskGraphName();
        }
        graphs.add(headGraph(model, previous).snapshot());
        TornadoExecutionPlan built = new TornadoExecutionPlan(graphs.toArray(new ImmutableTaskGraph[0]));
        if (profiling) {
            built.withProfiler(ProfilerMode.SILENT);
        }
        plan = built;
    }

    /** The activations every graph reads and writes, passed from graph to graph on the device. */
    private Object[] shared() {
        return new Object[] {x, selectedX, normed, q, k, v, attention, attnOut, h, gate, up, mlpOut, delta,
                positions, ropeCos, ropeSin};
    }

    private TaskGraph embeddingGraph(Model model) {
        int rows = batch * seqLen;
        graphNames.add("embedding");
        FloatArray embeddings = floats(model.embeddings());
        return new TaskGraph("embedding")
                .transferToDevice(DataTransferMode.EVERY_EXECUTION, tokens)
                .transferToDevice(DataTransferMode.FIRST_EXECUTION, embeddings)
                .transferToDevice(DataTransferMode.FIRST_EXECUTION, shared())
                .task("embed", TornadoKernels::embed, tokens, embeddings, x, rows, config.dim())
                .persistOnDevice(shared());
    }

    /** A tensor as F32 in TornadoVM's off-heap array, to be moved to the device on the first run. */
    private static FloatArray floats(Tensor t) {
        FloatArray a = new FloatArray(Math.toIntExact(t.numel()));
        for (int i = 0; i < a.getSize(); i++) {
            a.set(i, t.get(i));
        }
        return a;
    }

    private TaskGraph layerGraph(Model model, int layer, String previous) {
        ModelConfig c = config;
        LayerWeights w = model.layer(layer);
        String name = "layer" + layer;
        graphNames.add(name);
        int d = c.dim();
        int dh = c.headDim();
        int qDim = c.nHeads() * dh;
        boolean routed = c.isRouted(layer);
        int n = routed ? capacity : seqLen;
        int rows = batch * n;
        FloatArray attentionNorm = floats(w.attentionNorm());
        FloatArray wq = floats(w.wq());
        FloatArray wk = floats(w.wk());
        FloatArray wv = floats(w.wv());
        FloatArray wo = floats(w.wo());
        FloatArray ffnNorm = floats(w.ffnNorm());
        FloatArray w1 = floats(w.w1());
        FloatArray w2 = floats(w.w2());
        FloatArray w3 = floats(w.w3());
        TaskGraph g = new TaskGraph(name)
                .consumeFromDevice(previous, shared())
                .transferToDevice(DataTransferMode.FIRST_EXECUTION, attentionNorm, wq, wk, wv, wo, ffnNorm, w1, w2, w3);
        FloatArray in = x;
        IntArray pos = positions;
        FloatArray r = null;
        IntArray sel = null;
        if (routed) {
            FloatArray routerWeight = floats(w.router());
            r = new FloatArray(batch * seqLen);
            IntArray rank = new IntArray(batch * seqLen);
            sel = new IntArray(batch * capacity);
            routerDevice.put(layer, r);
            rankDevice.put(layer, rank);
            selectedDevice.put(layer, sel);
            router.put(layer, new float[batch * seqLen]);
            selected.put(layer, new int[batch * capacity]);
            g.transferToDevice(DataTransferMode.FIRST_EXECUTION, routerWeight, r, rank, sel)
                    .task("router", TornadoKernels::routerLogits, x, routerWeight, r, batch * seqLen, d)
                    .task("topk.rank", TornadoKernels::topKRank, r, rank, batch, seqLen)
                    .task("topk.select", TornadoKernels::topKCompact, rank, sel, batch, seqLen, capacity)
                    .task("gather", TornadoKernels::gather, x, sel, selectedX, batch, seqLen, capacity, d);
            in = selectedX;
            pos = sel;
        }
        g.task("attention.norm", TornadoKernels::rmsnorm, in, attentionNorm, normed, rows, d, (float) c.normEps())
                .task("attention.q", TornadoKernels::matmul, normed, wq, q, rows, d, qDim)
                .task("attention.k", TornadoKernels::matmul, normed, wk, k, rows, d, c.kvDim())
                .task("attention.v", TornadoKernels::matmul, normed, wv, v, rows, d, c.kvDim())
                .task("attention.rope_q", TornadoKernels::rope, q, pos, ropeCos, ropeSin, rows, c.nHeads(), dh)
                .task("attention.rope_k", TornadoKernels::rope, k, pos, ropeCos, ropeSin, rows, c.nKvHeads(), dh)
                .task("attention.softmax", TornadoKernels::attention, q, k, v, attention, batch, n, c.nHeads(), c.nKvHeads(), dh)
                .task("attention.out", TornadoKernels::matmul, attention, wo, attnOut, rows, qDim, d)
                .task("attention.residual", TornadoKernels::add, in, attnOut, h, rows * d)
                .task("mlp.norm", TornadoKernels::rmsnorm, h, ffnNorm, normed, rows, d, (float) c.normEps())
                .task("mlp.w1", TornadoKernels::matmul, normed, w1, gate, rows, d, c.hiddenDim())
                .task("mlp.w3", TornadoKernels::matmul, normed, w3, up, rows, d, c.hiddenDim())
                .task("mlp.swiglu", TornadoKernels::swiglu, gate, up, gate, rows * c.hiddenDim())
                .task("mlp.w2", TornadoKernels::matmul, gate, w2, mlpOut, rows, c.hiddenDim(), d)
                .task("mlp.delta", TornadoKernels::add, attnOut, mlpOut, delta, rows * d);
        if (routed) {
            g.task("scatter", TornadoKernels::scatter, delta, sel, r, x, batch, seqLen, capacity, d,
                    c.routerWeighting() == RouterWeighting.SIGMOID ? 1 : 0);
            g.transferToHost(DataTransferMode.UNDER_DEMAND, sel, r);
        } else {
            g.task("residual", TornadoKernels::add, x, delta, x, rows * d);
        }
        return g.persistOnDevice(shared());
    }

    private TaskGraph headGraph(Model model, String previous) {
        int rows = batch * seqLen;
        graphNames.add("head");
        FloatArray norm = floats(model.finalNorm());
        FloatArray output = floats(model.output());
        return new TaskGraph("head")
                .consumeFromDevice(previous, shared())
                .transferToDevice(DataTransferMode.FIRST_EXECUTION, norm, output, logitsDevice)
                .task("norm", TornadoKernels::rmsnorm, x, norm, normed, rows, config.dim(), (float) config.normEps())
                .task("logits", TornadoKernels::matmul, normed, output, logitsDevice, rows, config.dim(), config.vocabSize())
                .transferToHost(DataTransferMode.EVERY_EXECUTION, logitsDevice);
    }

    /** Whether runs bring the routed layers' selections and router logits back to the host (default: yes). */
    public TornadoForwardPlan withRoutingOutputs(boolean want) {
        wantRouting = want;
        return this;
    }

    @Override
    public void run(int[][] batchTokens) {
        if (batchTokens.length != batch) {
            throw new ModException("plan is for " + batch + " sequences, got " + batchTokens.length);
        }
        for (int b = 0; b < batch; b++) {
            if (batchTokens[b].length != seqLen) {
                throw new ModException("plan is for sequences of " + seqLen + " tokens, row " + b + " has " + batchTokens[b].length);
            }
            for (int t = 0; t < seqLen; t++) {
                int id = batchTokens[b][t];
                if (id < 0 || id >= config.vocabSize()) {
                    throw new ModException("token id " + id + " at row " + b + ", position " + t
                            + " is outside the vocabulary [0, " + config.vocabSize() + ")");
                }
                tokens.set(b * seqLen + t, id);
            }
        }
        lastProfile.clear();
        for (int g = 0; g < graphNames.size(); g++) {
            TornadoExecutionResult result = plan.withGraph(g).execute();
            if (profiling) {
                TornadoProfilerResult p = result.getProfilerResult();
                lastProfile.add(new GraphProfile(graphNames.get(g), p.getTotalBytesCopyIn(), p.getTotalBytesCopyOut(),
                        p.getDeviceKernelTime(), p.getDataTransfersTime(), p.getCompileTime()));
            }
            if (wantRouting) {
                for (Map.Entry<Integer, Integer> e : graphOfLayer.entrySet()) {
                    if (e.getValue() == g && selectedDevice.containsKey(e.getKey())) {
                        int layer = e.getKey();
                        result.transferToHost(selectedDevice.get(layer), routerDevice.get(layer));
                        copy(selectedDevice.get(layer), selected.get(layer));
                        copy(routerDevice.get(layer), router.get(layer));
                    }
                }
            }
        }
        MemorySegment.copy(logitsDevice.getSegment(), ValueLayout.JAVA_FLOAT, 0, logits, 0, logits.length);
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

    /** The graph names in execution order: embedding, layer0 .. layerN-1, head. */
    public List<String> graphNames() {
        return List.copyOf(graphNames);
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
