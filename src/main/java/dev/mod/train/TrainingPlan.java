package dev.mod.train;

import dev.mod.cpu.CausalAttention;
import dev.mod.cpu.PackedMatrix;
import dev.mod.cpu.RowKernels;
import dev.mod.cpu.TopKSelector;
import dev.mod.cpu.WorkerPool;
import dev.mod.model.AttentionWeights;
import dev.mod.model.BlockStep;
import dev.mod.model.LayerWeights;
import dev.mod.model.ModelConfig;
import dev.mod.plan.RoutingRule;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

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
    private final TrainMatmul mm;
    private final CausalAttention attention;
    private final TrainAttention attentionBackward;
    private final RowKernels rowKernels;
    /** cos, sin and -sin [T, dh / 2] of RoPE's angles: RoPE's backward rotates by the opposite angle. */
    private final float[] ropeCos;
    private final float[] ropeSin;
    private final float[] ropeSinBack;
    private final TopKSelector topK;
    private final Map<String, TrainMatmul.Weight> weights = new HashMap<>();
    /** The optimizer of a run's pass (opener); null in a plan made for its gradients alone. */
    private AdamW adam;
    private boolean weightsStale = true;
    /** Gradients that backward() accumulates with "+=" (the rest are written whole). */
    private final List<String> accumulated = new ArrayList<>();
    private final Layer[] layers;

    private final int[] tokens;
    private final int[] targets;
    private final int[] positions;
    private final float[] noise;    // [R] the random scores of a stochastic layer
    private final float[] x;        // [R, d] the residual stream; after forward() the final one
    private final float[] normedF;  // [R, d]
    private final float[] logits;   // [R, V]; probabilities after forward(), their gradient after backward()

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
    private final float[] dP;
    private final float[] dPredictor; // [R] the predictor's logit gradient

    private double crossEntropy;
    private double routerLoss;
    private double predictorLoss;

    /** The activations one layer keeps for its backward pass. n = R in a dense layer, B * k in a routed one. */
    private final class Layer {
        final int index;
        final boolean routed;
        final int n;
        final int perSequence;
        final float[] xin;
        final float[] r;
        final int[] sel;
        final int[] target;
        final float[] xs;
        final float[] normed1;
        final float[] q;
        final float[] k;
        final float[] v;
        final float[] att;
        final float[] lse;
        final float[] a;
        final float[] h;
        final float[] normed2;
        final float[] f;
        final float[] predictorHidden;
        final float[] predictorLogit;
        /** The layer's weights: the master copies, their gradients, and the products' packed forms (null where none). */
        final LayerWeights<float[]> w;
        final LayerWeights<float[]> grad;
        final LayerWeights<TrainMatmul.Weight> packed;
        final FeedForwardTraining feedForward;

        Layer(int index) {
            this.index = index;
            this.routed = c.isRouted(index);
            LayerWeights<long[]> shapes = LayerWeights.shapes(c, index, predictorDim);
            this.w = shapes.lookUp(p::get);
            this.grad = shapes.lookUp(grads::get);
            this.packed = shapes.lookUp(weights::get);
            this.perSequence = routed ? capacity : seqLen;
            this.n = batch * perSequence;
            int d = c.dim();
            int qDim = c.nHeads() * c.headDim();
            xin = new float[rows * d];
            r = routed ? new float[rows] : null;
            sel = routed ? new int[n] : null;
            target = routed ? new int[rows] : null;
            xs = routed ? new float[n * d] : null;
            normed1 = new float[n * d];
            q = new float[n * qDim];
            k = new float[n * c.kvDim()];
            v = new float[n * c.kvDim()];
            att = new float[n * qDim];
            lse = new float[batch * c.nHeads() * perSequence];
            a = new float[n * d];
            h = new float[n * d];
            normed2 = new float[n * d];
            f = new float[n * d];
            feedForward = FeedForwardTraining.of(packed.feedForward(), grad.feedForward(), mm, rowKernels, n, d, c.hiddenDim(), ffnScratch);
            predictorHidden = routed && predictorDim > 0 ? new float[rows * predictorDim] : null;
            predictorLogit = routed && predictorDim > 0 ? new float[rows] : null;
        }

        float[] blockIn() {
            return routed ? xs : xin;
        }

        int[] positions() {
            return routed ? sel : TrainingPlan.this.positions;
        }
    }

    public TrainingPlan(ModelConfig config, Parameters params, Parameters grads, AuxWeights aux, RoutingRule routing, int batch,
                        int seqLen, int threads) {
        this.c = config;
        this.p = params;
        this.grads = grads;
        this.aux = aux;
        this.routing = routing;
        this.batch = batch;
        this.seqLen = seqLen;
        this.rows = batch * seqLen;
        this.capacity = config.capacityTokens(seqLen);
        String predictor = config.routedLayers().isEmpty() ? null : "layers." + config.routedLayers().get(0) + ".predictor.w1.weight";
        this.predictorDim = predictor != null && params.has(predictor) ? (int) params.shape(predictor)[0] : 0;
        this.mm = new TrainMatmul(threads);
        this.attention = new CausalAttention(threads);
        this.attentionBackward = new TrainAttention(mm.pool(), threads);
        this.rowKernels = new RowKernels(mm.pool());
        int half = config.headDim() / 2;
        ropeCos = new float[seqLen * half];
        ropeSin = new float[seqLen * half];
        ropeSinBack = new float[seqLen * half];
        for (int pos = 0; pos < seqLen; pos++) {
            for (int j = 0; j < half; j++) {
                double angle = pos * Math.pow(config.ropeTheta(), -2.0 * j / config.headDim());
                ropeCos[pos * half + j] = (float) Math.cos(angle);
                ropeSin[pos * half + j] = (float) Math.sin(angle);
                ropeSinBack[pos * half + j] = -ropeSin[pos * half + j];
            }
        }
        this.topK = new TopKSelector(threads);
        int d = config.dim();
        int qDim = config.nHeads() * config.headDim();
        int f = config.hiddenDim();
        tokens = new int[rows];
        targets = new int[rows];
        positions = new int[rows];
        noise = new float[rows];
        for (int r = 0; r < rows; r++) {
            positions[r] = r % seqLen;
        }
        x = new float[rows * d];
        normedF = new float[rows * d];
        logits = new float[Math.multiplyExact(rows, config.vocabSize())];
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
        ffnScratch = FeedForwardTraining.Scratch.of(rows, f);
        dR = new float[rows];
        dP = new float[Math.max(1, rows * predictorDim)];
        dPredictor = new float[rows];
        for (String name : params.names()) {
            long[] shape = params.shape(name);
            if (shape.length == 2 && !name.equals("tok_embeddings.weight") && !name.endsWith("router.weight")
                    && !name.endsWith("predictor.w2.weight")) {
                weights.put(name, new TrainMatmul.Weight((int) shape[0], (int) shape[1]));
            } else {
                accumulated.add(name);
            }
        }
        layers = new Layer[config.nLayers()];
        for (int i = 0; i < layers.length; i++) {
            layers[i] = new Layer(i);
        }
    }

    /**
     * The cpu backend's training pass for a run: a plan on the state's parameters with their gradients, whose optimizer
     * steps run on the plan's threads.
     */
    public static TrainingPass.Opener opener(int threads) {
        return (s, state) -> {
            TrainingPlan plan = new TrainingPlan(s.config(), state.params(), state.params().zerosLike(),
                    new AuxWeights(s.auxRouter(), s.auxPredictor()), s.routing(), s.batch(), s.seqLen(), threads);
            plan.adam = state.adam();
            return plan;
        };
    }

    @Override
    public double clipGradients(double maxNorm) {
        return optimizer().clip(pool(), p, grads, maxNorm);
    }

    @Override
    public void update(double lr) {
        optimizer().update(pool(), p, grads, lr);
        weightsChanged();
    }

    @Override
    public TrainState state() {
        return new TrainState(p, optimizer());
    }

    private AdamW optimizer() {
        if (adam == null) {
            throw new IllegalStateException("a plan without an optimizer (TrainingPlan.opener makes one with)");
        }
        return adam;
    }

    /** The threads of this plan, for the optimizer to share. */
    public WorkerPool pool() {
        return mm.pool();
    }

    /** The parameters changed (an optimizer step): repack the weights before the next forward pass. */
    public void weightsChanged() {
        weightsStale = true;
    }

    private TrainMatmul.Weight w(String name) {
        return weights.get(name);
    }

    /** forward(input, target, 0): for learned routing, which draws nothing. */
    public double forward(int[][] input, int[][] target) {
        return forward(input, target, 0);
    }

    @Override
    public double forward(int[][] input, int[][] target, long draw) {
        if (weightsStale) {
            for (Map.Entry<String, TrainMatmul.Weight> e : weights.entrySet()) {
                e.getValue().refresh(mm, p.get(e.getKey()));
            }
            weightsStale = false;
        }
        for (int b = 0; b < batch; b++) {
            System.arraycopy(input[b], 0, tokens, b * seqLen, seqLen);
            System.arraycopy(target[b], 0, targets, b * seqLen, seqLen);
        }
        int d = c.dim();
        TrainKernels.embed(x, tokens, p.get("tok_embeddings.weight"), rows, d);
        routerLoss = 0;
        predictorLoss = 0;
        for (Layer l : layers) {
            System.arraycopy(x, 0, l.xin, 0, rows * d);
            for (BlockStep step : l.w.steps()) {
                switch (step) {
                    case ROUTER -> rowKernels.routerLogits(l.r, x, l.w.routing().router(), rows, d);
                    case SELECT -> select(l, draw);
                    case GATHER -> rowKernels.gather(l.xs, x, l.sel, batch, seqLen, capacity, d);
                    case ATTENTION -> attention(l);
                    case FEED_FORWARD -> feedForward(l);
                    case SCATTER -> rowKernels.scatter(x, l.f, l.sel, l.r, c.routerWeighting(), batch, seqLen, capacity, d);
                    case RESIDUAL -> rowKernels.add(x, x, l.f, rows * d);
                }
            }
        }
        rowKernels.rmsnorm(normedF, x, p.get("norm.weight"), rows, d, c.normEps());
        mm.forward(logits, normedF, w("output.weight"), rows);
        crossEntropy = TrainKernels.crossEntropy(logits, targets, rows, c.vocabSize());
        return loss();
    }

    // sel[B, k]: top-k of the rule's scores in each sequence, target[R] 1 where selected; the auxiliary losses of the
    // causal rules (router BCE on r, predictor BCE) against those choices
    private void select(Layer l, long draw) {
        topK.select(mm.pool(), l.sel, routing.trainingScores(l.r, rows, draw, l.index, noise), batch, seqLen, capacity);
        Arrays.fill(l.target, 0);
        for (int b = 0; b < batch; b++) {
            for (int j = 0; j < capacity; j++) {
                l.target[b * seqLen + l.sel[b * capacity + j]] = 1;
            }
        }
        routerLoss += TrainKernels.binaryCrossEntropy(null, l.r, l.target, rows, 0);
        if (predictorDim > 0) {
            predictorForward(l);
            predictorLoss += TrainKernels.binaryCrossEntropy(null, l.predictorLogit, l.target, rows, 0);
        }
    }

    // a[n, d] = wo . attention(RoPE(q, k), v), q, k, v from RMSNorm(in); h = in + a, for the block's input in[n, d]
    private void attention(Layer l) {
        int n = l.n;
        int d = c.dim();
        int dh = c.headDim();
        float[] in = l.blockIn();
        AttentionWeights<TrainMatmul.Weight> w = l.packed.attention();
        rowKernels.rmsnorm(l.normed1, in, l.w.attention().norm(), n, d, c.normEps());
        mm.forward(l.q, l.normed1, w.wq(), n);
        mm.forward(l.k, l.normed1, w.wk(), n);
        mm.forward(l.v, l.normed1, w.wv(), n);
        rowKernels.rope(l.q, l.positions(), ropeCos, ropeSin, n, c.nHeads(), dh);
        rowKernels.rope(l.k, l.positions(), ropeCos, ropeSin, n, c.nKvHeads(), dh);
        attention.attend(mm.pool(), l.att, l.lse, l.q, l.k, l.v, batch, l.perSequence, c.nHeads(), c.nKvHeads(), dh);
        mm.forward(l.a, l.att, w.wo(), n);
        rowKernels.add(l.h, in, l.a, n * d);
    }

    // f[n, d] = a + feedForward(RMSNorm(h))
    private void feedForward(Layer l) {
        int n = l.n;
        int d = c.dim();
        rowKernels.rmsnorm(l.normed2, l.h, l.w.feedForward().norm(), n, d, c.normEps());
        l.feedForward.forward(l.f, l.normed2);
        rowKernels.add(l.f, l.f, l.a, n * d);
    }

    // predictorLogit[R] = w2 . silu(w1 . xin[R, d])
    private void predictorForward(Layer l) {
        mm.forward(l.predictorHidden, l.xin, l.packed.routing().predictorW1(), rows);
        float[] w2 = l.w.routing().predictorW2();
        for (int t = 0; t < rows; t++) {
            double sum = 0;
            for (int j = 0; j < predictorDim; j++) {
                float z = l.predictorHidden[t * predictorDim + j];
                sum += w2[j] * (z / (1 + Math.exp(-z)));
            }
            l.predictorLogit[t] = (float) sum;
        }
    }

    @Override
    public void backward() {
        // Matrix gradients are written whole by their GEMM; the others (embeddings, norms, routers, predictor outputs) are
        // sums of "+=", zeroed first.
        for (int i = 0; i < accumulated.size(); i++) {
            Arrays.fill(grads.get(accumulated.get(i)), 0f);
        }
        int d = c.dim();
        int vocab = c.vocabSize();
        TrainKernels.crossEntropyBackward(logits, logits, targets, rows, vocab, 1f / rows);
        mm.backwardWeight(grads.get("output.weight"), logits, normedF, rows, vocab, d);
        mm.backwardInput(dN, logits, w("output.weight"), rows);
        Arrays.fill(dx, 0f);
        rmsnormBackward(dx, grads.get("norm.weight"), dN, x, p.get("norm.weight"), rows);
        for (int i = layers.length - 1; i >= 0; i--) {
            Layer l = layers[i];
            float[] din = l.routed ? dIn : dx;
            for (BlockStep step : l.w.steps().reversed()) {
                switch (step) {
                    // x' = x + f(x): f's gradient is dx', x's is dx' plus what flows back through f
                    case RESIDUAL -> System.arraycopy(dx, 0, dF, 0, rows * d);
                    case SCATTER -> {
                        Arrays.fill(dR, 0, rows, 0f);
                        TrainKernels.scatterBackward(dF, dR, dx, l.f, l.sel, l.r, c.routerWeighting(), batch, seqLen, capacity, d);
                        Arrays.fill(dIn, 0, l.n * d, 0f);
                    }
                    case FEED_FORWARD -> feedForwardBackward(l, dF);
                    case ATTENTION -> attentionBackward(l, din);
                    case GATHER -> TrainKernels.gatherBackward(dx, dIn, l.sel, batch, seqLen, capacity, d);
                    case SELECT -> selectBackward(l);
                    case ROUTER -> TrainKernels.routerLogitsBackward(dx, l.grad.routing().router(), dR, l.xin, l.w.routing().router(), rows, d);
                }
            }
        }
        TrainKernels.embedBackward(grads.get("tok_embeddings.weight"), dx, tokens, rows, d);
    }

    // dA[n, d] = the gradient of the attention output a (f = a + m: df, and h = in + a: dh), dH[n, d] = h's, and the
    // feed-forward's weight gradients, from df[n, d]
    private void feedForwardBackward(Layer l, float[] df) {
        int n = l.n;
        int d = c.dim();
        l.feedForward.backward(dN, df, l.normed2);
        Arrays.fill(dH, 0, n * d, 0f);
        rmsnormBackward(dH, l.grad.feedForward().norm(), dN, l.h, l.w.feedForward().norm(), n);
        rowKernels.add(dA, df, dH, n * d);
    }

    // din[n, d] += the gradient of the block's input (dh, and the attention branch's), and the attention's weight
    // gradients, from dA and dH
    private void attentionBackward(Layer l, float[] din) {
        int n = l.n;
        int d = c.dim();
        int dh = c.headDim();
        float[] in = l.blockIn();
        AttentionWeights<float[]> grad = l.grad.attention();
        AttentionWeights<TrainMatmul.Weight> w = l.packed.attention();
        mm.backwardWeight(grad.wo(), dA, l.att, n, d, c.nHeads() * dh);
        mm.backwardInput(dAtt, dA, w.wo(), n);
        attentionBackward.backward(dQ, dK, dV, dAtt, l.att, l.lse, l.q, l.k, l.v, batch, l.perSequence, c.nHeads(), c.nKvHeads(), dh);
        rowKernels.rope(dQ, l.positions(), ropeCos, ropeSinBack, n, c.nHeads(), dh);
        rowKernels.rope(dK, l.positions(), ropeCos, ropeSinBack, n, c.nKvHeads(), dh);
        PackedMatrix normed1 = mm.packActivations(l.normed1, n, d);
        mm.backwardWeight(grad.wq(), dQ, normed1, n, c.nHeads() * dh);
        mm.backwardWeight(grad.wk(), dK, normed1, n, c.kvDim());
        mm.backwardWeight(grad.wv(), dV, normed1, n, c.kvDim());
        mm.backwardInput(dN, dQ, w.wq(), n);
        mm.backwardInputAdd(dN, dK, w.wk(), n);
        mm.backwardInputAdd(dN, dV, w.wv(), n);
        rowKernels.add(din, din, dH, n * d);
        rmsnormBackward(din, grad.norm(), dN, in, l.w.attention().norm(), n);
    }

    // dR[R] += the router BCE's gradient; the predictor's gradients (its input is a stop-gradient: nothing reaches x)
    private void selectBackward(Layer l) {
        if (aux.router() != 0) {
            TrainKernels.binaryCrossEntropy(dR, l.r, l.target, rows, (float) aux.router());
        }
        if (predictorDim > 0) {
            predictorBackward(l);
        }
    }

    // dx[rows, d] += RMSNorm's input gradient, dw[d] += its weight gradient, from dout[rows, d] and the input x
    private void rmsnormBackward(float[] dx, float[] dw, float[] dout, float[] x, float[] w, int n) {
        rowKernels.rmsnormBackward(dx, dout, x, w, n, c.dim(), c.normEps());
        TrainKernels.rmsnormWeightGrad(dw, dout, x, n, c.dim(), c.normEps());
    }

    // the predictor's BCE gradient into its w1 and w2 only: its input is a stop-gradient of xin
    private void predictorBackward(Layer l) {
        float[] w2 = l.w.routing().predictorW2();
        float[] g2 = l.grad.routing().predictorW2();
        float[] dLogit = dPredictor;
        Arrays.fill(dLogit, 0, rows, 0f);
        TrainKernels.binaryCrossEntropy(dLogit, l.predictorLogit, l.target, rows, (float) aux.predictor());
        for (int t = 0; t < rows; t++) {
            for (int j = 0; j < predictorDim; j++) {
                float z = l.predictorHidden[t * predictorDim + j];
                float sig = 1 / (1 + (float) Math.exp(-z));
                g2[j] += dLogit[t] * z * sig;
                dP[t * predictorDim + j] = dLogit[t] * w2[j] * sig * (1 + z * (1 - sig));
            }
        }
        mm.backwardWeight(l.grad.routing().predictorW1(), dP, l.xin, rows, predictorDim, c.dim());
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
        Layer l = layers[layer];
        if (!l.routed || (predictor && predictorDim == 0)) {
            return Double.NaN;
        }
        float[] z = predictor ? l.predictorLogit : l.r;
        int agree = 0;
        for (int t = 0; t < rows; t++) {
            if ((z[t] > 0 ? 1 : 0) == l.target[t]) {
                agree++;
            }
        }
        return (double) agree / rows;
    }

    @Override
    public double causalFraction(int layer) {
        float[] r = layers[layer].r;
        int above = 0;
        for (int t = 0; t < rows; t++) {
            above += r[t] > 0 ? 1 : 0;
        }
        return (double) above / rows;
    }

    @Override
    public int argmax(int r) {
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
        return x;
    }

    @Override
    public int[] selected(int layer) {
        return layers[layer].sel;
    }

    @Override
    public int firstNonFiniteLayer() {
        for (Layer l : layers) {
            if (!finite(l.xin) || !finite(l.f)) {
                return l.index;
            }
        }
        return -1;
    }

    private static boolean finite(float[] a) {
        for (float v : a) {
            if (!Float.isFinite(v)) {
                return false;
            }
        }
        return true;
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
    public int predictorDim() {
        return predictorDim;
    }

    @Override
    public void close() {
        mm.close();
    }
}
