package dev.mod.tornado;

import dev.mod.ModException;
import dev.mod.model.AttentionWeights;
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

    /** Refuses, before a plan takes anything on the device, a model whose blocks these tasks cannot run. */
    static void requireSupported(ModelConfig c) {
        if (c.hasExperts()) {
            throw new ModException("the tornado backend does not run mixtures of experts yet: use --backend cpu or reference");
        }
    }

    /** The activations every layer's graph reads and writes, passed from graph to graph on the device. */
    record Buffers(FloatArray x, FloatArray normed, FloatArray qkv, FloatArray attention, FloatArray attnOut, FloatArray hidden) {
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
        return new Buffers(stages.floats(rows * c.dim()), stages.floats(rows * c.dim()), stages.floats(rows * (qDim + 2 * c.kvDim())),
                stages.floats(rows * qDim), stages.floats(rows * c.dim()), stages.floats(rows * c.hiddenDim()));
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

    // mlp.norm (of h = x + attnOut, never stored), then the feed-forward's products; the last one's epilogue writes
    // x += g(r) * (attnOut + m) into the layer's rows
    void feedForward(GraphSpec g, FeedForward<Tensor> w, Rows rows) {
        stages.rmsnorm(g, "mlp.norm", b.x(), stages.floats(w.norm()), rows.map(), b.attnOut(), b.normed(), rows.live(), 1, rows.rows(),
                rows.seqLen(), rows.perSeq());
        switch (w) {
            case SwiGlu<Tensor> mlp -> swiGlu(g, mlp, rows);
            case MixtureOfExperts<Tensor> moe -> throw new IllegalStateException("refused by requireSupported");
        }
    }

    // mlp.w13 (w1 and w3 interleaved, SwiGLU in the epilogue), mlp.w2
    private void swiGlu(GraphSpec g, SwiGlu<Tensor> w, Rows rows) {
        int d = c.dim();
        int f = c.hiddenDim();
        stages.matmul(g, "mlp.w13", b.normed(), stages.gateUpInterleaved(w.w1(), w.w3()), b.hidden(), rows.live(), rows.rows(), d,
                stages.gateUpColumns(), epilogue(MatmulKernels.SWIGLU, b.attnOut(), f, rows));
        stages.matmul(g, "mlp.w2", b.hidden(), stages.floats(w.w2()), b.x(), rows.live(), rows.rows(), f, d,
                epilogue(MatmulKernels.RESIDUAL, b.attnOut(), d, rows));
    }

    private static StageTasks.Epilogue epilogue(int mode, FloatArray extra, int width, Rows rows) {
        return new StageTasks.Epilogue(mode, extra, rows.map(), rows.gains(), width, rows.seqLen(), rows.perSeq(), rows.gainMode());
    }
}
