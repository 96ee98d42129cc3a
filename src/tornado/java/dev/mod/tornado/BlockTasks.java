package dev.mod.tornado;

import dev.mod.model.AttentionWeights;
import dev.mod.model.Experts;
import dev.mod.model.FeedForward;
import dev.mod.model.MixtureOfExperts;
import dev.mod.model.ModelConfig;
import dev.mod.model.SwiGlu;
import dev.mod.model.Tensor;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * The tasks of a block's attention and feed-forward halves (BlockStep.ATTENTION and FEED_FORWARD), which both TornadoVM
 * plans add to every layer's graph: the forward pass over B sequences of T tokens, and generation's causal plan over a
 * chunk against the KV caches. What differs between them is how rows are addressed (Rows) and the attention core between
 * the q/k/v product and wo (RoPE and attention over the rows, or RoPE fused with the cache write and attention over the
 * cache). A routed block has no gather or scatter task: the norms read the picked rows in place through the layer's map,
 * and the feed-forward's last product scatters x += g(r) * f back into them (a dense block: x += f).
 */
final class BlockTasks {
    private final ModelConfig c;
    private final StageTasks stages;
    private final Buffers b;

    /** The activations every layer's graph reads and writes, passed from graph to graph on the device. */
    record Buffers(FloatArray x, FloatArray normed, FloatArray qkv, FloatArray attention, FloatArray attnOut, FloatArray hidden,
                   ExpertScratch experts) {
    }

    /**
     * A mixture of experts' scratch, shared by every layer's graph: f [rows, d], which the experts add their weighted
     * outputs into; one expert's gathered rows [rows, d] and hidden activations [rows, Fe]; each row's rank by one
     * expert's probability; zeros [rows, d], the extra term of an expert's w2 epilogue.
     */
    record ExpertScratch(FloatArray f, FloatArray gathered, FloatArray hidden, IntArray rank, FloatArray zeros) {
    }

    /**
     * What a layer's mixture of experts leaves on the device for the host: its router's logits [rows, E + N], each real
     * expert's probabilities [rows] and the rows it took, selected[e][B, k_e] (positions within a sequence's n rows).
     */
    record ExpertOutputs(FloatArray logits, FloatArray[] probabilities, IntArray[] selected) {
    }

    /**
     * How a layer's tasks address their rows: task row i is row (i / perSeq) * seqLen + map[i] of the residual stream
     * (seqLen 0: map[i] itself); live[0] of the `rows` the grids are made for are there in a run; gains are the router
     * logits a routed layer's output is weighted by (gainMode 1: g(r) = r, 2: sigmoid(r); 0: not weighted). unused
     * fills the slots of what a task does not read (TornadoVM 5.2.1's scheduler loops forever on a task that names one
     * buffer twice).
     */
    record Rows(IntArray map, FloatArray gains, int gainMode, IntArray live, int rows, int seqLen, int perSeq, FloatArray unused) {
    }

    /** RoPE and attention between the q/k/v product and wo, on the qkv buffer into the attention buffer. */
    interface AttentionCore {
        void add(GraphSpec g);
    }

    BlockTasks(ModelConfig c, StageTasks stages, Buffers buffers) {
        this.c = c;
        this.stages = stages;
        this.b = buffers;
    }

    /** Activations for `rows` rows. */
    static Buffers buffers(ModelConfig c, StageTasks stages, int rows) {
        int qDim = c.nHeads() * c.headDim();
        ExpertScratch experts = null;
        if (c.hasExperts()) {
            FloatArray zeros = stages.floats(rows * c.dim());
            zeros.init(0f);
            experts = new ExpertScratch(stages.floats(rows * c.dim()), stages.floats(rows * c.dim()),
                    stages.floats(rows * c.experts().hiddenDim()), stages.ints(rows), zeros);
        }
        return new Buffers(stages.floats(rows * c.dim()), stages.floats(rows * c.dim()), stages.floats(rows * (qDim + 2 * c.kvDim())),
                stages.floats(rows * qDim), stages.floats(rows * c.dim()), stages.floats(rows * c.hiddenDim()), experts);
    }

    Buffers buffers() {
        return b;
    }

    /** Columns of the q/k/v product: q, then k, then v of each row. */
    int qkvColumns() {
        return c.nHeads() * c.headDim() + 2 * c.kvDim();
    }

    // attention.norm, attention.qkv (q/k/v concatenated into one weight), the core, attention.out: attnOut = wo . attention
    void attention(GraphSpec g, AttentionWeights<Tensor> w, Rows rows, AttentionCore core) {
        int d = c.dim();
        FloatArray norm = stages.floats(w.norm());
        FloatArray qkv = stages.concatenated(w.wq(), w.wk(), w.wv());
        FloatArray wo = stages.floats(w.wo());
        StageTasks.Epilogue store = epilogue(MatmulKernels.STORE, rows.unused(), 0, rows);
        stages.rmsnorm(g, "attention.norm", b.x(), norm, rows.map(), rows.unused(), b.normed(), rows.live(), 0, rows.rows(),
                rows.seqLen(), rows.perSeq());
        stages.matmul(g, "attention.qkv", b.normed(), qkv, b.qkv(), rows.live(), rows.rows(), d, qkvColumns(), store);
        core.add(g);
        stages.matmul(g, "attention.out", b.attention(), wo, b.attnOut(), rows.live(), rows.rows(), c.nHeads() * c.headDim(), d, store);
    }

    /**
     * How a plan's experts pick their rows on the device (FeedForwardStage.ExpertRule): sel holds at most mostRows
     * rows, perSeq of each sequence, and an expert's row r is row (r / perSeq) * seqLen + sel[r] of the layer's.
     */
    record ExpertRule(Selector selector, int mostRows, int perSeq, int seqLen) {
        interface Selector {
            // adds the tasks that write into sel the rows expert e takes by its probabilities p[rows]; returns the
            // buffer whose first int counts them
            IntArray select(GraphSpec g, String task, int expert, FloatArray p, IntArray sel);
        }
    }

    /** Expert choice over whole sequences (the forward pass): each expert's top k_e of each sequence's n rows. */
    ExpertRule topK(int batch, int n) {
        int k = c.experts().rowsPerExpert(n);
        IntArray taken = stages.count(batch * k);
        IntArray rank = b.experts().rank();
        ExpertRule.Selector topK = (g, task, expert, p, sel) -> {
            g.task(task + ".rank", t -> t.task(task + ".rank", TornadoKernels::topKRank, p, rank, batch, n), p, rank)
                    .task(task + ".select", t -> t.task(task + ".select", TornadoKernels::topKCompact, rank, sel, batch, n, k),
                            rank, sel);
            return taken;
        };
        return new ExpertRule(topK, batch * k, k, n);
    }

    /**
     * The causal rule (generation): expert e takes the live rows whose probability is above thresholds[e] (CausalPlan's,
     * compared exactly as the host compares a float with a double: CausalKernels' floatBelow).
     */
    ExpertRule thresholds(double[] thresholds, IntArray live, int rows) {
        ExpertRule.Selector above = (g, task, expert, p, sel) -> {
            IntArray taken = stages.ints(1);
            float threshold = TornadoCausalPlan.floatBelow(thresholds[expert]);
            g.task(task + ".select", t -> t.task(task + ".select", TornadoKernels::thresholdRows, p, live, sel, taken, threshold),
                    p, live, sel, taken);
            return taken;
        };
        return new ExpertRule(above, rows, rows, 0);
    }

    // mlp.norm (of h = x + attnOut, never stored), then the feed-forward's tasks, which write x += g(r) * (attnOut + f)
    // into the layer's rows; a mixture of experts picks its rows by the rule and returns what it leaves for the host
    // (other feed-forwards: null)
    ExpertOutputs feedForward(GraphSpec g, FeedForward<Tensor> w, Rows rows, ExpertRule rule) {
        stages.rmsnorm(g, "mlp.norm", b.x(), stages.floats(w.norm()), rows.map(), b.attnOut(), b.normed(), rows.live(), 1, rows.rows(),
                rows.seqLen(), rows.perSeq());
        return switch (w) {
            case SwiGlu<Tensor> mlp -> {
                swiGlu(g, mlp, rows);
                yield null;
            }
            case MixtureOfExperts<Tensor> moe -> experts(g, moe, rows, rule);
        };
    }

    // mlp.w13 (w1 and w3 interleaved, SwiGLU in the epilogue), mlp.w2, whose epilogue adds attnOut + f to the rows
    private void swiGlu(GraphSpec g, SwiGlu<Tensor> w, Rows rows) {
        int d = c.dim();
        int f = c.hiddenDim();
        stages.matmul(g, "mlp.w13", b.normed(), stages.gateUpInterleaved(w.w1(), w.w3()), b.hidden(), rows.live(), rows.rows(), d,
                StageTasks.gateUpColumns(f), epilogue(MatmulKernels.SWIGLU, b.attnOut(), f, rows));
        stages.matmul(g, "mlp.w2", b.hidden(), stages.floats(w.w2()), b.x(), rows.live(), rows.rows(), f, d,
                epilogue(MatmulKernels.RESIDUAL, b.attnOut(), d, rows));
    }

    // FeedForwardStage's experts on the device: mlp.router (logits of every expert), mlp.zero (f = 0), then per real
    // expert e: its probabilities, its rows by the rule, those rows gathered, its w13 product with SwiGLU and its w2
    // product, whose epilogue adds p_e * out into f at the rows it took (the weighted scatter); last mlp.residual:
    // x += g(r) * (attnOut + f)
    private ExpertOutputs experts(GraphSpec g, MixtureOfExperts<Tensor> w, Rows rows, ExpertRule rule) {
        Experts experts = c.experts();
        ExpertScratch s = b.experts();
        int d = c.dim();
        int fe = experts.hiddenDim();
        int all = experts.routed();
        int layerRows = rows.rows();
        int most = rule.mostRows();
        FloatArray logits = stages.floats(layerRows * all);
        stages.matmul(g, "mlp.router", b.normed(), stages.floats(w.router()), logits, rows.live(), layerRows, d, all,
                epilogue(MatmulKernels.STORE, rows.unused(), 0, rows));
        g.task("mlp.zero", t -> t.task("mlp.zero", TornadoKernels::zero, s.f(), layerRows * d), s.f());
        FloatArray[] probabilities = new FloatArray[experts.count()];
        IntArray[] selected = new IntArray[experts.count()];
        for (int e = 0; e < experts.count(); e++) {
            MixtureOfExperts.Expert<Tensor> expert = w.experts().get(e);
            String name = "expert" + e;
            int index = e;
            FloatArray p = stages.floats(layerRows);
            IntArray sel = stages.ints(most);
            probabilities[e] = p;
            selected[e] = sel;
            g.task(name + ".probability", t -> t.task(name + ".probability", TornadoKernels::expertProbability, logits, p, rows.live(),
                    index, layerRows, all), logits, p, rows.live());
            IntArray taken = rule.selector().select(g, name, e, p, sel);
            g.task(name + ".gather", t -> t.task(name + ".gather", TornadoKernels::gatherRows, b.normed(), sel, s.gathered(), taken, most,
                    rule.perSeq(), rule.seqLen(), d), b.normed(), sel, s.gathered(), taken);
            StageTasks.Epilogue swiglu = new StageTasks.Epilogue(MatmulKernels.SWIGLU, s.zeros(), sel, p, fe, rule.seqLen(), rule.perSeq(), 0);
            stages.matmul(g, name + ".w13", s.gathered(), stages.gateUpInterleaved(expert.w1(), expert.w3()), s.hidden(), taken, most,
                    d, StageTasks.gateUpColumns(fe), swiglu);
            StageTasks.Epilogue weightedScatter = new StageTasks.Epilogue(MatmulKernels.RESIDUAL, s.zeros(), sel, p, d, rule.seqLen(),
                    rule.perSeq(), 1);
            stages.matmul(g, name + ".w2", s.hidden(), stages.floats(expert.w2()), s.f(), taken, most, fe, d, weightedScatter);
        }
        g.task("mlp.residual", t -> t.task("mlp.residual", TornadoKernels::residual, b.x(), b.attnOut(), s.f(), rows.map(), rows.gains(),
                rows.live(), layerRows, d, rows.seqLen(), rows.perSeq(), rows.gainMode()), b.x(), b.attnOut(), s.f(), rows.map(),
                rows.gains(), rows.live());
        return new ExpertOutputs(logits, probabilities, selected);
    }

    private static StageTasks.Epilogue epilogue(int mode, FloatArray extra, int width, Rows rows) {
        return new StageTasks.Epilogue(mode, extra, rows.map(), rows.gains(), width, rows.seqLen(), rows.perSeq(), rows.gainMode());
    }
}
