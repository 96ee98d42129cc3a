package dev.mod.model;

import java.util.List;

/**
 * The steps of a layer's block, named once: every executor (the plan's stages, generation's causal pass, training's
 * forward and, in reverse, its backward, the TornadoVM graphs) walks a layer's steps in this order and runs each its
 * own way. A dense block is x += f(x) for every token; a routed block (Mixture-of-Depths) scores the tokens, selects
 * some, gathers them, runs the same f on them alone and scatters x += g(r) * f back into the selected rows.
 */
public enum BlockStep {
    /** r = router . x for every token. */
    ROUTER,
    /** The rows the layer processes, by the routing rule (top-k over the sequence, or a causal rule). */
    SELECT,
    /** xs = x[selected]. */
    GATHER,
    /** h = in + wo . attention(RoPE(wq, wk, wv . RMSNorm(in))), a = wo . attention(...). */
    ATTENTION,
    /** f = a + feedForward(RMSNorm(h)). */
    FEED_FORWARD,
    /** x[selected] += g(r) * f. */
    SCATTER,
    /** x += f. */
    RESIDUAL;

    private static final List<BlockStep> DENSE = List.of(ATTENTION, FEED_FORWARD, RESIDUAL);
    private static final List<BlockStep> ROUTED = List.of(ROUTER, SELECT, GATHER, ATTENTION, FEED_FORWARD, SCATTER);

    /** The steps of a dense or a routed block, in order. */
    public static List<BlockStep> of(boolean routed) {
        return routed ? ROUTED : DENSE;
    }
}
