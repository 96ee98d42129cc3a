package dev.mod.cli;

import dev.mod.model.ModelConfig;

/** Human-readable one-line summaries for command output. */
final class Describe {
    private Describe() {
    }

    static String config(ModelConfig c) {
        String routing = c.routedLayers().isEmpty()
                ? "no routed layers"
                : "routed layers " + c.routedLayers() + " at capacity " + c.capacity() + " (" + c.routerWeighting().jsonName() + ")";
        String feedForward = !c.hasExperts() ? "hidden " + c.hiddenDim()
                : String.format("%d experts%s of hidden %d at capacity %s", c.experts().count(),
                        c.experts().noOps() > 0 ? " + " + c.experts().noOps() + " no-op" : "", c.experts().hiddenDim(), c.experts().capacity());
        return String.format("vocab %d, dim %d, %d layers, %d heads (%d kv), %s, max_seq_len %d, %s",
                c.vocabSize(), c.dim(), c.nLayers(), c.nHeads(), c.nKvHeads(), feedForward, c.maxSeqLen(), routing);
    }

    static String flops(double flops) {
        String[] units = {"", "K", "M", "G", "T", "P"};
        int u = 0;
        while (flops >= 1000 && u < units.length - 1) {
            flops /= 1000;
            u++;
        }
        return String.format("%.3g %sFLOP", flops, units[u]);
    }
}
