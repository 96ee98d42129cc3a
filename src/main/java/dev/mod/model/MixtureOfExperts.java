package dev.mod.model;

import java.util.ArrayList;
import java.util.List;
import java.util.function.BiFunction;

/**
 * The mixture-of-experts feed-forward (Experts): the norm [d], the router [E + N, d] over the real and no-op experts,
 * and each real expert's SwiGLU weights.
 */
public record MixtureOfExperts<W>(W norm, W router, List<Expert<W>> experts) implements FeedForward<W> {
    public MixtureOfExperts {
        experts = List.copyOf(experts);
    }

    /** One expert: w2 . (silu(w1 . x) * (w3 . x)); w1 and w3 [Fe, d], w2 [d, Fe]. */
    public record Expert<W>(W w1, W w3, W w2) {
    }

    @Override
    public <V> MixtureOfExperts<V> map(String prefix, BiFunction<String, W, V> f) {
        V mappedNorm = f.apply(prefix + "ffn_norm.weight", norm);
        V mappedRouter = f.apply(prefix + "feed_forward.router.weight", router);
        List<Expert<V>> mapped = new ArrayList<>();
        for (int e = 0; e < experts.size(); e++) {
            String p = prefix + "feed_forward.experts." + e + ".";
            Expert<W> x = experts.get(e);
            mapped.add(new Expert<>(f.apply(p + "w1.weight", x.w1()), f.apply(p + "w3.weight", x.w3()), f.apply(p + "w2.weight", x.w2())));
        }
        return new MixtureOfExperts<>(mappedNorm, mappedRouter, mapped);
    }
}
