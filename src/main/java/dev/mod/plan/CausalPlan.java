package dev.mod.plan;

import dev.mod.ModException;
import dev.mod.model.AttentionWeights;
import dev.mod.model.BlockStep;
import dev.mod.model.DType;
import dev.mod.model.LayerWeights;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.RoutingCalibration;
import dev.mod.model.Tensor;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The forward pass for generation: up to S sequences, each with its own KV cache, fed new tokens in
 * chunks (a prompt at prefill, one token per sequence at a decode step). Routed layers decide per token
 * with a causal rule, so a text gives the same logits whether it comes in one chunk or token by token.
 *
 * Buffers are sized once for the largest chunk (maxRows); a chunk's rows of one sequence must be adjacent
 * and come in order. In a routed layer the rows the rule picks are gathered, run through the block
 * against that layer's cache of routed tokens only, and scattered back with the router weight g(r);
 * the others pass through. The number of picked rows varies from chunk to chunk, the buffers do not.
 */
public final class CausalPlan implements CausalPass {
    private final Model model;
    private final ModelConfig c;
    private final Kernels kernels;
    private final RoutingRule routing;
    private final int sequences;
    private final int maxRows;
    private final Activations a;
    private final KvCache cache;

    private final int[] tokens;       // [maxRows] the chunk
    private final int[] rowSeq;       // [maxRows] sequence of each row
    private final int[] rowPos;       // [maxRows] position of each row in its sequence
    private final int[] selected;     // [maxRows] rows a routed layer processes
    private final int[] selSeq;
    private final int[] selPos;
    private final float[][] router;   // [layer][maxRows] router logits (null in dense layers)
    private final int[][] routed;     // [layer][maxRows] 1 where the row was processed
    private final double[] thresholds; // [layer] router-logit threshold found when calibrating
    private final ExpertChoice experts; // a mixture's router logits, probabilities and each expert's rows (null: no experts)
    private final double[][] expertThresholds; // [layer][expert] the causal rule of expert choice, or found when calibrating
    private final FeedForwardStage.ExpertRule expertRule = this::expertRows; // made once, not at every layer of every step
    private final float[] scratch;     // what the rule's decision needs (the predictor's hidden layer)
    private final boolean calibrating;

    private final SequenceLengths lengths;
    private final long[] routedCount;  // [layer] tokens routed since the last resetCounts
    private final long[] decisionCount;
    private final long[][] expertCount;    // [layer][expert] rows an expert took since the last resetCounts
    private final long[][] expertDecisions; // [layer][expert] rows it decided on
    private int rows;

    /** A plan for S sequences under a causal rule, taking chunks of at most maxRows rows, up to max_seq_len tokens each. */
    public CausalPlan(Model model, Kernels kernels, RoutingRule routing, int sequences, int maxRows) {
        this(model, kernels, routing, sequences, maxRows, model.config().maxSeqLen());
    }

    /** The same, each sequence holding at most `context` tokens (at most max_seq_len), in an F32 cache. */
    public CausalPlan(Model model, Kernels kernels, RoutingRule routing, int sequences, int maxRows, int context) {
        this(model, kernels, routing, sequences, maxRows, context, DType.F32);
    }

    /**
     * The same with a KV cache of the given type: F32, or BF16 (half the bytes a decode step reads from the cache; keys
     * and values rounded, so logits move within what the rounding allows; {@link KvCache#typeFor} is generation's
     * default).
     */
    public CausalPlan(Model model, Kernels kernels, RoutingRule routing, int sequences, int maxRows, int context,
                      DType cacheType) {
        this(model, kernels, routing, sequences, maxRows, context, cacheType, false);
    }

    private CausalPlan(Model model, Kernels kernels, RoutingRule routing, int sequences, int maxRows, int context,
                       DType cacheType, boolean calibrating) {
        if (!calibrating) {
            requireExpertThresholds(model);
        }
        this.model = model;
        this.c = model.config();
        this.kernels = kernels;
        this.routing = routing;
        this.calibrating = calibrating;
        this.lengths = new SequenceLengths(c, sequences, maxRows, context);
        if (!calibrating) {
            routing.checkCausal(model);
        }
        this.sequences = sequences;
        this.maxRows = maxRows;
        PlanShape.checkActivations(c, maxRows, "a chunk of " + maxRows + " tokens");
        this.a = Activations.allocate(c, 1, maxRows);
        this.cache = new KvCache(c, sequences, context, cacheType);
        this.tokens = new int[maxRows];
        this.rowSeq = new int[maxRows];
        this.rowPos = new int[maxRows];
        this.selected = new int[maxRows];
        this.selSeq = new int[maxRows];
        this.selPos = new int[maxRows];
        int layers = c.nLayers();
        this.router = new float[layers][];
        this.routed = new int[layers][];
        this.thresholds = new double[layers];
        this.experts = c.hasExperts() ? ExpertChoice.causal(c.experts(), maxRows) : null;
        int expertLayers = c.hasExperts() ? layers : 0;
        int expertsPerLayer = c.hasExperts() ? c.experts().count() : 0;
        this.expertThresholds = new double[expertLayers][expertsPerLayer];
        for (int layer = 0; layer < expertThresholds.length && !calibrating; layer++) {
            for (int e = 0; e < expertsPerLayer; e++) {
                expertThresholds[layer][e] = model.calibration().expertThreshold(layer, e);
            }
        }
        this.scratch = new float[calibrating ? 0 : routing.scratchFloats(model, maxRows)];
        for (int layer : c.routedLayers()) {
            router[layer] = new float[maxRows];
            routed[layer] = new int[maxRows];
        }
        this.routedCount = new long[layers];
        this.decisionCount = new long[layers];
        this.expertCount = new long[expertLayers][expertsPerLayer];
        this.expertDecisions = new long[expertLayers][expertsPerLayer];
    }

    /**
     * Sets the thresholds of the calibrated rule from a calibration text: S sequences of T tokens run
     * causally, layer after layer; each routed layer's threshold is put between the router logits ranked
     * k and k + 1 over all S * T tokens, k = S * capacity tokens(T), so that the layer routes the model's
     * capacity of the text (exactly, unless logits tie at the boundary). Later layers see the earlier
     * layers' calibrated routing.
     */
    public static RoutingCalibration calibrate(Model model, Kernels kernels, int[][] sequences) {
        int seqLen = sequences[0].length;
        CausalPlan plan = new CausalPlan(model, kernels, RoutingRule.CALIBRATED,
                sequences.length, sequences.length * seqLen, model.config().maxSeqLen(), DType.F32, true);
        int rows = 0;
        for (int s = 0; s < sequences.length; s++) {
            if (sequences[s].length != seqLen) {
                throw new ModException("calibration sequences must all have " + seqLen + " tokens");
            }
            for (int t = 0; t < seqLen; t++) {
                plan.rowSeq[rows] = s;
                plan.tokens[rows++] = sequences[s][t];
            }
        }
        plan.run(plan.rowSeq, plan.tokens, rows);
        Map<Integer, Double> thresholds = new TreeMap<>();
        for (int layer : model.config().routedLayers()) {
            thresholds.put(layer, plan.thresholds[layer]);
        }
        Map<Integer, List<Double>> experts = new TreeMap<>();
        for (int layer = 0; layer < plan.expertThresholds.length; layer++) {
            experts.put(layer, Arrays.stream(plan.expertThresholds[layer]).boxed().toList());
        }
        return new RoutingCalibration(thresholds, experts, rows, seqLen, model.config().capacity());
    }

    @Override
    public void prefill(int s, int[] prompt) {
        if (prompt.length > maxRows) {
            throw new ModException("a chunk of " + prompt.length + " tokens is more than this plan's " + maxRows);
        }
        for (int i = 0; i < prompt.length; i++) {
            rowSeq[i] = s;
            tokens[i] = prompt[i];
        }
        run(rowSeq, tokens, prompt.length);
    }

    @Override
    public void run(int[] seq, int[] tok, int n) {
        lengths.take(seq, tok, n, rowPos);
        if (seq != rowSeq) {
            System.arraycopy(seq, 0, rowSeq, 0, n);
        }
        if (tok != tokens) {
            System.arraycopy(tok, 0, tokens, 0, n);
        }
        rows = n;
        int d = c.dim();
        kernels.embed(a.x(), tokens, model.embeddings(), n, d);
        for (int layer = 0; layer < c.nLayers(); layer++) {
            layer(model.layer(layer), n);
        }
        kernels.rmsnorm(a.normed(), a.x(), model.finalNorm(), n, d, c.normEps());
        kernels.matmul(a.logits(), a.normed(), model.output(), n, d, c.vocabSize());
    }

    // x[n, d] += the layer's block, step by step: in a routed layer the rule picks rows, xs = x[picked],
    // x[picked] += g(r) * f(xs); a routed layer that picks no row leaves x as it is
    private void layer(LayerWeights<Tensor> w, int n) {
        int layer = w.index();
        int d = c.dim();
        float[] r = router[layer];
        float[] in = a.x();
        int rowsIn = n;
        int[] seqIn = rowSeq;
        int[] posIn = rowPos;
        for (BlockStep step : w.steps()) {
            switch (step) {
                case ROUTER -> kernels.routerLogits(r, a.x(), w.routing().router(), n, d);
                case SELECT -> {
                    rowsIn = select(w, n);
                    if (rowsIn == 0) {
                        return;
                    }
                    seqIn = selSeq;
                    posIn = selPos;
                }
                case GATHER -> {
                    kernels.gather(a.selectedX(), a.x(), selected, 1, n, rowsIn, d);
                    in = a.selectedX();
                }
                case ATTENTION -> attention(layer, w.attention(), in, rowsIn, seqIn, posIn);
                case FEED_FORWARD -> FeedForwardStage.apply(kernels, c, w.feedForward(), a, experts, expertRule, layer, 1, rowsIn);
                case SCATTER -> kernels.scatter(a.x(), a.delta(), selected, r, c.routerWeighting(), 1, n, rowsIn, d);
                case RESIDUAL -> kernels.add(a.x(), a.x(), a.delta(), n * d);
            }
        }
    }

    // The rows of the chunk [0, n) a routed layer processes, by the rule (or, calibrating, by the threshold that routes the
    // capacity of the chunk): their indices into selected, their sequences and positions into selSeq and selPos
    private int select(LayerWeights<Tensor> w, int n) {
        int layer = w.index();
        float[] r = router[layer];
        if (calibrating) {
            thresholds[layer] = calibratedThreshold(r, n);
            for (int i = 0; i < n; i++) {
                routed[layer][i] = r[i] > thresholds[layer] ? 1 : 0;
            }
        } else {
            routing.decide(kernels, model, w.routing(), layer, a.x(), r, n, routed[layer], scratch);
        }
        int picked = 0;
        for (int i = 0; i < n; i++) {
            if (routed[layer][i] == 1) {
                selected[picked] = i;
                selSeq[picked] = rowSeq[i];
                selPos[picked] = rowPos[i];
                picked++;
            }
        }
        routedCount[layer] += picked;
        decisionCount[layer] += n;
        return picked;
    }

    /** Refuses a model with experts whose calibration has no thresholds for them: a causal pass cannot route it. */
    public static void requireExpertThresholds(Model model) {
        if (model.config().hasExperts() && (model.calibration() == null || model.calibration().expertThresholds().isEmpty())) {
            // expert choice ranks a whole sequence's rows; a decode step has one, so each expert takes a row by a threshold
            throw new ModException("a model with experts routes causally by calibrated thresholds on its experts' "
                    + "probabilities: run mod calibrate on it first");
        }
    }

    // The rows of the chunk's n that an expert takes: those whose probability p is above the expert's threshold (or,
    // calibrating, above the threshold that gives it max(1, floor(capacity x n)) of them); sel as topK writes it
    private int expertRows(Kernels k, int layer, int expert, float[] p, int[] sel, int batch, int n) {
        if (calibrating) {
            expertThresholds[layer][expert] = calibratedThreshold(p, n, c.experts().rowsPerExpert(n));
        }
        double threshold = expertThresholds[layer][expert];
        int taken = 0;
        for (int i = 0; i < n; i++) {
            if (p[i] > threshold) {
                sel[taken++] = i;
            }
        }
        expertCount[layer][expert] += taken;
        expertDecisions[layer][expert] += n;
        return taken;
    }

    // the midpoint between the logits ranked k and k + 1 of r[n], k = S * capacityTokens(T)
    private double calibratedThreshold(float[] r, int n) {
        return calibratedThreshold(r, n, sequences * c.capacityTokens(n / sequences));
    }

    // the midpoint between the values ranked k and k + 1 of r[n] (below the smallest when k is n or more)
    private static double calibratedThreshold(float[] r, int n, int k) {
        float[] sorted = Arrays.copyOf(r, n);
        Arrays.sort(sorted);
        if (k >= n) {
            return sorted[0] - 1.0;
        }
        return ((double) sorted[n - k] + sorted[n - k - 1]) / 2;
    }

    // a and h [n, d] = the attention half of the block on in[n, d], against each row's sequence cache (its k, v appended first)
    private void attention(int layer, AttentionWeights<Tensor> w, float[] in, int n, int[] seq, int[] pos) {
        AttentionStage.project(kernels, c, w, a, in, pos, n);
        for (int i = 0; i < n; i++) {
            cache.append(layer, seq[i], a.k(), a.v(), i, pos[i]);
        }
        if (n > 1 && seq[0] == seq[n - 1] && cache.length(layer, seq[0]) == n) {
            // a prompt's first chunk: its rows attend only to each other, so this is causal attention over the chunk
            // itself, on the blocked prefill kernel, rather than row by row against the cache; on the keys and values
            // as the cache holds them, so that a text gives the same logits in one chunk or token by token
            cache.round(a.k(), n);
            cache.round(a.v(), n);
            kernels.attention(a.attention(), a.q(), a.k(), a.v(), pos, 1, n, c.nHeads(), c.nKvHeads(), c.headDim());
        } else {
            cachedAttention(layer, n, seq);
        }
        AttentionStage.output(kernels, c, w, a, in, n);
    }

    // attention of rows [0, n) against their sequences' caches, one run of adjacent rows of a sequence at a time
    private void cachedAttention(int layer, int n, int[] seq) {
        for (int i0 = 0; i0 < n; ) {
            int s = seq[i0];
            int i1 = i0;
            while (i1 < n && seq[i1] == s) {
                i1++;
            }
            int count = i1 - i0;
            int start = cache.length(layer, s) - count;
            if (cache.type() == DType.BF16) {
                kernels.cachedAttentionBf16(a.attention(), a.q(), i0, count, cache.keyPairsT(layer, s), cache.capacity(layer, s),
                        cache.valuePairs(layer, s), start, c.nHeads(), c.nKvHeads(), c.headDim());
            } else {
                kernels.cachedAttention(a.attention(), a.q(), i0, count, cache.keysT(layer, s), cache.capacity(layer, s),
                        cache.values(layer, s), start, c.nHeads(), c.nKvHeads(), c.headDim());
            }
            i0 = i1;
        }
    }

    @Override
    public void truncate(int s, int length) {
        lengths.truncate(s, length);
        cache.truncate(s, length);
    }

    /** The share of the rows a layer's feed-forward saw that an expert took, since the last resetCounts (NaN: none seen). */
    public double expertFraction(int layer, int expert) {
        return (double) expertCount[layer][expert] / expertDecisions[layer][expert];
    }

    @Override
    public void resetCounts() {
        Arrays.fill(routedCount, 0);
        Arrays.fill(decisionCount, 0);
        for (int layer = 0; layer < expertCount.length; layer++) {
            Arrays.fill(expertCount[layer], 0);
            Arrays.fill(expertDecisions[layer], 0);
        }
    }

    @Override
    public int sequences() {
        return sequences;
    }

    @Override
    public int length(int s) {
        return lengths.length(s);
    }

    @Override
    public float[] logits() {
        return a.logits();
    }

    @Override
    public int rows() {
        return rows;
    }

    @Override
    public int[] routed(int layer) {
        return lookup(routed, layer);
    }

    @Override
    public float[] routerLogits(int layer) {
        return lookup(router, layer);
    }

    @Override
    public long routedTokens(int layer) {
        return routedCount[layer];
    }

    @Override
    public long decisions(int layer) {
        return decisionCount[layer];
    }

    public KvCache cache() {
        return cache;
    }

    @Override
    public long cacheBytes() {
        return cache.bytes();
    }

    @Override
    public DType cacheType() {
        return cache.type();
    }

    @Override
    public ModelConfig config() {
        return c;
    }

    @Override
    public String backend() {
        return kernels.name();
    }

    private <T> T lookup(T[] perLayer, int layer) {
        if (layer < 0 || layer >= perLayer.length || perLayer[layer] == null) {
            throw new ModException("layer " + layer + " is not routed");
        }
        return perLayer[layer];
    }
}
