package dev.mod.model;

import java.util.function.BiFunction;

/** The SwiGLU MLP: w2 . (silu(w1 . x) * (w3 . x)) on x = RMSNorm(h); w1 and w3 [F, d], w2 [d, F]. */
public record SwiGlu<W>(W norm, W w1, W w3, W w2) implements FeedForward<W> {
    @Override
    public <V> SwiGlu<V> map(String prefix, BiFunction<String, W, V> f) {
        return new SwiGlu<>(
                f.apply(prefix + "ffn_norm.weight", norm),
                f.apply(prefix + "feed_forward.w1.weight", w1),
                f.apply(prefix + "feed_forward.w3.weight", w3),
                f.apply(prefix + "feed_forward.w2.weight", w2));
    }
}
