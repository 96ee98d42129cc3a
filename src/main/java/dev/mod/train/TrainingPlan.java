package dev.mod.train;

import dev.mod.model.AttentionWeights;
import dev.mod.model.BlockStep;
import dev.mod.model.LayerWeights;
import dev.mod.model.ModelConfig;
import dev.mod.model.Rope;
import dev.mod.plan.RoutingRule;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;

/**
 * One training step of a model on batches of B sequences of T tokens, as a static plan: every activation
 * the backward pass needs is kept in buffers allocated once for (config, B, T), layer by layer, and the
 * gradient scratch is shared by the layers. forward() computes the loss (cross-entropy of the next token,
 * plus the auxiliary routing losses); backward() fills the gradients. Routed layers route with top-k over
 * the sequence, as at inference; the gradient reaches the router through g(r) * f (the choice itself has
 * none), and, when weighted, through a BCE loss on the router logits with the top-k choices as targets.
 * The causal predictor, when the model has one, is trained with BCE on the same targets from a
 * stop-gradient of the layer's input, so it never changes the language model.
 */
public final class TrainingPlan implements TrainingPass {
    /** Weights of the auxiliary losses: router BCE (per routed layer, summed) and predictor BCE. */
    public record AuxWeights(double router, double predictor) {
    }

    private final ModelConfig c;
    private final Parameters p;
    private final Parameters grads;
    private final AuxWeights aux;
    private final RoutingRule routing;
    private final int batch;
    private final int seqLen;
    private final int rows;
    private final int capacity;
    private final int predictorDim;
    private final TrainingKernels kernels;
    /** cos, sin and -sin [T, dh / 2] of RoPE's angles: RoPE's backward rotates by the opposite angle. */
    private final float[] ropeCos;
    private final float[] ropeSin;
    private final float[] ropeSinBack;
    private final Map<String, TrainingKernels.Matrix> weights = new HashMap<>();
    /** The optimizer of a run's pass (opener); null in a plan made for its gradients alone. */
    private AdamW adam;
    private boolean weightsStale = true;
    /** Gradients that backward() accumulates with "+=" (the rest are written whole). */
    private final List<String> accumulated = new ArrayList<>();
    private final TrainingLayer[] layers;

    private final int[] tokens;
    private final int[] targets;
    private final int[] positions;
    private final float[][] noise;  // [layer][R] the random scores of a stochastic control's routed layers, else null
    private final float[] x;        // [R, d] the residual stream; after forward() the final one
    private final float[] normedF;  // [R, d]
    private final float[] logits;   // [R, V]; probabilities after forward(), their gradient after backward()
    /** The last forward()'s losses: cross-entropy, then each routed layer's router BCE and predictor BCE. */
    private final double[] losses;

    // gradient scratch, [R, *]
    private final float[] dx;
    private final float[] dIn;
    private final float[] dF;
    private final float[] dA;
    private final float[] dH;
    private final float[] dN;
    private final float[] dQ;
    private final float[] dK;
    private final float[] dV;
    private final float[] dAtt;
    private final FeedForwardTraining.Scratch ffnScratch;
    private final float[] dR;
    private final PredictorTraining predictor;

    /** Parameters that do not train (mod train --train routers): their gradients are zeroed after each backward pass. */
    private List<String> frozen = List.of();

    private double crossEntropy;
    private double routerLoss;
    private double predictorLoss;

    /**
     * About the bytes a plan for (config, B, T) allocates beyond the weights and moments it is given: every layer's kept
     * activations (counted at all R rows), the shared gradient scratch, the logits, the gradients and the products'
     * packed copies of the weights. Checked before a run writes anything (Trainer).
     */
    public static long bytesNeeded(ModelConfig c, long parameters, int batch, int seqLen) {
        long rows = (long) batch * seqLen;
        long qDim = (long) c.nHeads() * c.headDim();
        // experts keep their inputs, outputs and g, u, s for their share of the rows, and every row's logits and probabilities
        long feedForward = c.hasExperts()
                ? (long) Math.ceil(c.experts().count() * c.experts().capacity() * (2.0 * c.dim() + 3.0 * c.experts().hiddenDim()))
                        + c.experts().routed() + c.experts().count()
                : 3L * c.hiddenDim();
        long perRow = 8L * c.dim() + 2 * qDim + 2L * c.kvDim() + feedForward;
        long floats = c.nLayers() * rows * perRow + rows * (perRow + c.vocabSize()) + 3 * parameters;
        return floats * Float.BYTES;
    }

    /**
     * About the bytes a device keeps for a run: the plan's buffers as bytesNeeded counts them (the device has no packed
     * copies, but their count stands in for the weights) and AdamW's two moments.
     */
    public static long deviceBytes(TrainSettings s, Parameters params) {
        long parameters = params.names().stream().mapToLong(n -> params.get(n).length).sum();
        return bytesNeeded(s.config(), parameters, s.batch(), s.seqLen()) + 2 * parameters * Float.BYTES;
    }

    /** A plan on a backend's training kernels, which it closes with itself. */
    public TrainingPlan(ModelConfig config, Parameters params, Parameters grads, AuxWeights aux, RoutingRule routing, int batch,
                        int seqLen, TrainingKernels kernels) {
        this.c = config;
        this.p = params;
        this.grads = grads;
        this.aux = aux;
        this.routing = routing;
        this.batch = batch;
        this.seqLen = seqLen;
        this.rows = batch * seqLen;
        this.capacity = config.capacityTokens(seqLen);
        String predictorW1 = config.routedLayers().isEmpty() ? null : "layers." + config.routedLayers().get(0) + ".predictor.w1.weight";
        this.predictorDim = predictorW1 != null && params.has(predictorW1) ? (int) params.shape(predictorW1)[0] : 0;
        this.kernels = kernels;
        int half = config.headDim() / 2;
        ropeCos = new float[seqLen * half];
        ropeSin = new float[seqLen * half];
        ropeSinBack = new float[seqLen * half];
        Rope.fill(ropeCos, ropeSin, config.ropeTheta(), config.headDim(), 0, seqLen);
        for (int i = 0; i < ropeSin.length; i++) {
            ropeSinBack[i] = -ropeSin[i];
        }
        int d = config.dim();
        int qDim = config.nHeads() * config.headDim();
        int f = config.hiddenDim();
        tokens = new int[rows];
        targets = new int[rows];
        positions = new int[rows];
        noise = new float[config.nLayers()][];
        if (routing.scores() != RoutingRule.Scores.ROUTER) {
            for (int layer : config.routedLayers()) {
                noise[layer] = new float[rows];
            }
        }
        for (int r = 0; r < rows; r++) {
            positions[r] = r % seqLen;
        }
        x = new float[rows * d];
        normedF = new float[rows * d];
        logits = new float[Math.multiplyExact(rows, config.vocabSize())];
        losses = new double[1 + 2 * config.routedLayers().size()];
        dx = new float[rows * d];
        dIn = new float[rows * d];
        dF = new float[rows * d];
        dA = new float[rows * d];
        dH = new float[rows * d];
        dN = new float[rows * d];
        dQ = new float[rows * qDim];
        dK = new float[rows * config.kvDim()];
        dV = new float[rows * config.kvDim()];
        dAtt = new float[rows * qDim];
        ffnScratch = FeedForwardTraining.Scratch.of(config, rows);
        dR = new float[rows];
        predictor = new PredictorTraining(kernels, rows, config.dim(), predictorDim);
        for (String name : params.names()) {
            long[] shape = params.shape(name);
            // the routing's vectors (MoD's router [1, d], the predictor's w2 [1, P]) are accumulated, not products
            if (shape.length == 2 && !name.equals("tok_embeddings.weight") && !name.matches("layers\\.\\d+\\.(router|predictor\\.w2)\\.weight")) {
                weights.put(name, kernels.matrix((int) shape[0], (int) shape[1]));
            } else {
                accumulated.add(name);
            }
        }
        layers = new TrainingLayer[config.nLayers()];
        for (int i = 0; i < layers.length; i++) {
            LayerWeights<long[]> shapes = LayerWeights.shapes(c, i, predictorDim);
            layers[i] = new TrainingLayer(c, i, shapes.lookUp(p::get), shapes.lookUp(grads::get), shapes.lookUp(weights::get),
                    batch, seqLen, predictorDim, positions, ffnScratch, kernels);
        }
    }

    /**
     * A run's training pass on a backend's kernels (made for each pass opened): a plan on the state's parameters with their
     * gradients, whose optimizer steps run on those kernels.
     */
    public static TrainingPass.Opener opener(BiFunction<TrainSettings, TrainState, TrainingKernels> kernels) {
        return (s, state) -> {
            TrainingPlan plan = new TrainingPlan(s.config(), state.params(), state.params().zerosLike(),
                    new AuxWeights(s.auxRouter(), s.auxPredictor()), s.routing(), s.batch(), s.seqLen(), kernels.apply(s, state));
            plan.adam = state.adam();
            if (s.initFrom() != null) {
                plan.frozen = state.params().names().stream().filter(n -> !s.initFrom().trains(n)).toList();
            }
            plan.kernels.trace(() -> plan.traceStep(s.clip()));
            return plan;
        };
    }

    // one step of zeros, for the kernels to learn its calls (trace)
    private void traceStep(double maxNorm) {
        int[][] zeros = new int[batch][seqLen];
        forward(zeros, zeros, 0);
        backward();
        clipGradients(maxNorm);
        update(0);
    }

    @Override
    public double clipGradients(double maxNorm) {
        kernels.section("clip");
        return kernels.clip(grads, maxNorm);
    }

    @Override
    public void update(double lr) {
        kernels.section("update");
        kernels.update(optimizer(), p, grads, lr);
        weightsChanged();
    }

    @Override
    public TrainState state() {
        AdamW adam = optimizer();
        for (String name : p.names()) {
            kernels.download(p.get(name));
            kernels.download(adam.m().get(name));
            kernels.download(adam.v().get(name));
        }
        return new TrainState(p, adam);
    }

    private AdamW optimizer() {
        if (adam == null) {
            throw new IllegalStateException("a plan without an optimizer (TrainingPlan.opener makes one with)");
        }
        return adam;
    }

    /** The parameters changed (an optimizer step): repack the weights before the next forward pass. */
    public void weightsChanged() {
        weightsStale = true;
    }

    private TrainingKernels.Matrix w(String name) {
        return weights.get(name);
    }

    /** forward(input, target, 0): for learned routing, which draws nothing. */
    public double forward(int[][] input, int[][] target) {
        return forward(input, target, 0);
    }

    @Override
    public double forward(int[][] input, int[][] target, long draw) {
        if (weightsStale) {
            for (Map.Entry<String, TrainingKernels.Matrix> e : weights.entrySet()) {
                kernels.load(e.getValue(), p.get(e.getKey()));
            }
            weightsStale = false;
        }
        for (int b = 0; b < batch; b++) {
            System.arraycopy(input[b], 0, tokens, b * seqLen, seqLen);
            System.arraycopy(target[b], 0, targets, b * seqLen, seqLen);
        }
        int d = c.dim();
        kernels.section("embedding");
        kernels.upload(tokens);
        kernels.upload(targets);
        kernels.embed(x, tokens, p.get("tok_embeddings.weight"), rows, d);
        for (TrainingLayer l : layers) {
            kernels.section("layer" + l.index + ".forward");
            kernels.copy(l.xin, x, rows * d);
            for (BlockStep step : l.w.steps()) {
                switch (step) {
                    case ROUTER -> kernels.routerLogits(l.r, x, l.w.routing().router(), rows, d);
                    case SELECT -> select(l, draw);
                    case GATHER -> kernels.gather(l.xs, x, l.sel, batch, seqLen, capacity, d);
                    case ATTENTION -> attention(l);
                    case FEED_FORWARD -> feedForward(l);
                    case SCATTER -> kernels.scatter(x, l.f, l.sel, outputWeights(l), c.routerWeighting(), batch, seqLen, capacity, d);
                    case RESIDUAL -> kernels.add(x, x, l.f, rows * d);
                }
            }
        }
        kernels.section("head");
        kernels.rmsnorm(normedF, x, p.get("norm.weight"), rows, d, c.normEps());
        kernels.matmul(logits, normedF, w("output.weight"), rows);
        kernels.crossEntropy(losses, 0, logits, targets, rows, c.vocabSize());
        kernels.download(losses);
        crossEntropy = losses[0];
        routerLoss = 0;
        predictorLoss = 0;
        for (int j = 0; j < c.routedLayers().size(); j++) {
            routerLoss += losses[1 + 2 * j];
            predictorLoss += losses[2 + 2 * j];
        }
        return loss();
    }

    // sel[B, k]: top-k of the rule's scores in each sequence, target[R] 1 where selected; the auxiliary losses of the
    // causal rules (router BCE on r, predictor BCE) against those choices
    private void select(TrainingLayer l, long draw) {
        float[] scores = switch (routing.scores()) {
            case ROUTER -> l.r;
            case UNIFORM -> {
                kernels.uniformScores(noise[l.index], draw, l.index, rows);
                yield noise[l.index];
            }
            case GAUSSIAN -> {
                kernels.gaussianScores(noise[l.index], draw, l.index, rows);
                yield noise[l.index];
            }
        };
        kernels.select(l.sel, scores, batch, seqLen, capacity);
        kernels.topKTargets(l.target, l.sel, batch, seqLen, capacity);
        int slot = 1 + 2 * c.routedLayers().indexOf(l.index);
        kernels.binaryCrossEntropy(losses, slot, l.r, l.target, rows);
        if (predictorDim > 0) {
            predictor.forward(l);
            kernels.binaryCrossEntropy(losses, slot + 1, l.predictorLogit, l.target, rows);
        }
    }

    // a[n, d] = wo . attention(RoPE(q, k), v), q, k, v from RMSNorm(in); h = in + a, for the block's input in[n, d]
    private void attention(TrainingLayer l) {
        int n = l.n;
        int d = c.dim();
        int dh = c.headDim();
        float[] in = l.blockIn();
        AttentionWeights<TrainingKernels.Matrix> w = l.packed.attention();
        kernels.rmsnorm(l.normed1, in, l.w.attention().norm(), n, d, c.normEps());
        kernels.matmul(l.q, l.normed1, w.wq(), n);
        kernels.matmul(l.k, l.normed1, w.wk(), n);
        kernels.matmul(l.v, l.normed1, w.wv(), n);
        kernels.rope(l.q, l.positions(), ropeCos, ropeSin, n, c.nHeads(), dh);
        kernels.rope(l.k, l.positions(), ropeCos, ropeSin, n, c.nKvHeads(), dh);
        kernels.attention(l.att, l.lse, l.q, l.k, l.v, batch, l.perSequence, c.nHeads(), c.nKvHeads(), dh);
        kernels.matmul(l.a, l.att, w.wo(), n);
        kernels.add(l.h, in, l.a, n * d);
    }

    // f[n, d] = a + feedForward(RMSNorm(h))
    private void feedForward(TrainingLayer l) {
        int n = l.n;
        int d = c.dim();
        kernels.rmsnorm(l.normed2, l.h, l.w.feedForward().norm(), n, d, c.normEps());
        l.feedForward.forward(l.f, l.normed2);
        kernels.add(l.f, l.f, l.a, n * d);
    }

    @Override
    public void backward() {
        // Matrix gradients are written whole by their GEMM; the others (embeddings, norms, routers, predictor outputs) are
        // sums of "+=", zeroed first.
        kernels.section("head.backward");
        for (int i = 0; i < accumulated.size(); i++) {
            float[] g = grads.get(accumulated.get(i));
            kernels.zero(g, g.length);
        }
        int d = c.dim();
        int vocab = c.vocabSize();
        kernels.crossEntropyBackward(logits, logits, targets, rows, vocab, 1f / rows);
        kernels.matmulBackwardWeight(grads.get("output.weight"), logits, normedF, rows, vocab, d);
        kernels.matmulBackwardInput(dN, logits, w("output.weight"), rows);
        kernels.zero(dx, rows * d);
        rmsnormBackward(dx, grads.get("norm.weight"), dN, x, p.get("norm.weight"), rows);
        for (int i = layers.length - 1; i >= 0; i--) {
            TrainingLayer l = layers[i];
            kernels.section("layer" + i + ".backward");
            float[] din = l.routed ? dIn : dx;
            for (BlockStep step : l.w.steps().reversed()) {
                switch (step) {
                    // x' = x + f(x): f's gradient is dx', x's is dx' plus what flows back through f
                    case RESIDUAL -> kernels.copy(dF, dx, rows * d);
                    case SCATTER -> {
                        kernels.zero(dR, rows);
                        kernels.scatterBackward(dF, dR, dx, l.f, l.sel, outputWeights(l), c.routerWeighting(), batch, seqLen, capacity, d);
                        if (outputWeights(l) != l.r) {
                            kernels.zero(dR, rows); // the weights were samples: nothing flows back to the router
                        }
                        kernels.zero(dIn, l.n * d);
                    }
                    case FEED_FORWARD -> feedForwardBackward(l, dF);
                    case ATTENTION -> attentionBackward(l, din);
                    case GATHER -> kernels.gatherBackward(dx, dIn, l.sel, batch, seqLen, capacity, d);
                    case SELECT -> selectBackward(l);
                    case ROUTER -> kernels.routerLogitsBackward(dx, l.grad.routing().router(), dR, l.xin, l.w.routing().router(), rows, d);
                }
            }
        }
        kernels.section("embedding.backward");
        kernels.embedBackward(grads.get("tok_embeddings.weight"), dx, tokens, rows, d);
        if (!frozen.isEmpty()) {
            kernels.section("frozen");
            for (String name : frozen) {
                kernels.zero(grads.get(name), grads.get(name).length);
            }
        }
    }

    // dA[n, d] = the gradient of the attention output a (f = a + m: df, and h = in + a: dh), dH[n, d] = h's, and the
    // feed-forward's weight gradients, from df[n, d]
    private void feedForwardBackward(TrainingLayer l, float[] df) {
        int n = l.n;
        int d = c.dim();
        l.feedForward.backward(dN, df, l.normed2);
        kernels.zero(dH, n * d);
        rmsnormBackward(dH, l.grad.feedForward().norm(), dN, l.h, l.w.feedForward().norm(), n);
        kernels.add(dA, df, dH, n * d);
    }

    // din[n, d] += the gradient of the block's input (dh, and the attention branch's), and the attention's weight
    // gradients, from dA and dH
    private void attentionBackward(TrainingLayer l, float[] din) {
        int n = l.n;
        int d = c.dim();
        int dh = c.headDim();
        float[] in = l.blockIn();
        AttentionWeights<float[]> grad = l.grad.attention();
        AttentionWeights<TrainingKernels.Matrix> w = l.packed.attention();
        kernels.matmulBackwardWeight(grad.wo(), dA, l.att, n, d, c.nHeads() * dh);
        kernels.matmulBackwardInput(dAtt, dA, w.wo(), n);
        kernels.attentionBackward(dQ, dK, dV, dAtt, l.att, l.lse, l.q, l.k, l.v, batch, l.perSequence, c.nHeads(), c.nKvHeads(), dh);
        kernels.rope(dQ, l.positions(), ropeCos, ropeSinBack, n, c.nHeads(), dh);
        kernels.rope(dK, l.positions(), ropeCos, ropeSinBack, n, c.nKvHeads(), dh);
        TrainingKernels.Activations normed1 = kernels.activations(l.normed1, n, d);
        kernels.matmulBackwardWeight(grad.wq(), dQ, normed1, n, c.nHeads() * dh);
        kernels.matmulBackwardWeight(grad.wk(), dK, normed1, n, c.kvDim());
        kernels.matmulBackwardWeight(grad.wv(), dV, normed1, n, c.kvDim());
        kernels.matmulBackwardInput(dN, dQ, w.wq(), n);
        kernels.matmulBackwardInputAdd(dN, dK, w.wk(), n);
        kernels.matmulBackwardInputAdd(dN, dV, w.wv(), n);
        kernels.add(din, din, dH, n * d);
        rmsnormBackward(din, grad.norm(), dN, in, l.w.attention().norm(), n);
    }

    // [R]: what weights a routed layer's processed outputs, g of it: the router's logits, or the Gaussian control's samples
    private float[] outputWeights(TrainingLayer l) {
        return routing.scores() == RoutingRule.Scores.GAUSSIAN ? noise[l.index] : l.r;
    }

    // dR[R] += the router BCE's gradient; the predictor's gradients (its input is a stop-gradient: nothing reaches x)
    private void selectBackward(TrainingLayer l) {
        if (aux.router() != 0) {
            kernels.binaryCrossEntropyBackward(dR, l.r, l.target, rows, (float) aux.router());
        }
        if (predictorDim > 0) {
            predictor.backward(l, (float) aux.predictor());
        }
    }

    // dx[rows, d] += RMSNorm's input gradient, dw[d] += its weight gradient, from dout[rows, d] and the input x
    private void rmsnormBackward(float[] dx, float[] dw, float[] dout, float[] x, float[] w, int n) {
        kernels.rmsnormBackward(dx, dw, dout, x, w, n, c.dim(), c.normEps());
    }

    /** The loss of the last forward(): cross-entropy plus the weighted auxiliary losses. */
    public double loss() {
        return crossEntropy + aux.router() * routerLoss + (predictorDim > 0 ? aux.predictor() * predictorLoss : 0);
    }

    @Override
    public double crossEntropy() {
        return crossEntropy;
    }

    @Override
    public double routerLoss() {
        return routerLoss;
    }

    @Override
    public double predictorLoss() {
        return predictorDim > 0 ? predictorLoss : 0;
    }

    @Override
    public double agreement(int layer, boolean predictor) {
        TrainingLayer l = layers[layer];
        if (l.routed) {
            kernels.download(l.target);
            kernels.download(predictor && l.predictorLogit != null ? l.predictorLogit : l.r);
        }
        return l.agreement(predictor);
    }

    @Override
    public double causalFraction(int layer) {
        kernels.download(layers[layer].r);
        return layers[layer].causalFraction();
    }

    @Override
    public int argmax(int r) {
        kernels.download(logits);
        int v = c.vocabSize();
        int best = 0;
        for (int i = 1; i < v; i++) {
            if (logits[r * v + i] > logits[r * v + best]) {
                best = i;
            }
        }
        return best;
    }

    /** The residual stream [B, T, d] after the last block of the last forward() (before the final norm). */
    public float[] hidden() {
        kernels.download(x);
        return x;
    }

    @Override
    public int[] selected(int layer) {
        kernels.download(layers[layer].sel);
        return layers[layer].sel;
    }

    @Override
    public int firstNonFiniteLayer() {
        for (TrainingLayer l : layers) {
            kernels.download(l.xin);
            kernels.download(l.f);
            if (!l.finite()) {
                return l.index;
            }
        }
        return -1;
    }

    public int batch() {
        return batch;
    }

    public int seqLen() {
        return seqLen;
    }

    public ModelConfig config() {
        return c;
    }

    @Override
    public String device() {
        return kernels.device();
    }

    @Override
    public int predictorDim() {
        return predictorDim;
    }

    @Override
    public void close() {
        kernels.close();
    }
}
