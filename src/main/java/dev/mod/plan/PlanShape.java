package dev.mod.plan;

import dev.mod.ModException;
import dev.mod.model.MemoryBudget;
import dev.mod.model.ModelConfig;

import java.util.ArrayList;
import java.util.List;

/**
 * The static shape of a forward pass for batches of B sequences of T tokens, which every backend's plan
 * follows: the embedding, then each layer with its kind and the rows of each sequence it processes (k in a
 * routed layer, T in a dense one), then the head. The cpu and reference backends' {@link ForwardPlan} makes
 * its stages from it, the TornadoVM plan its task graphs.
 */
public record PlanShape(ModelConfig config, int batch, int seqLen, int capacity, List<Layer> layers) {
    /** One layer: routed or dense, and the rows of each sequence its attention and MLP process. */
    public record Layer(int index, boolean routed, int rowsPerSequence) {
    }

    public PlanShape {
        layers = List.copyOf(layers);
    }

    /** The shape for (config, B, T), or a one-line error when B or T cannot be planned. */
    public static PlanShape of(ModelConfig config, int batch, int seqLen) {
        if (batch < 1) {
            throw new ModException("batch must hold at least one sequence");
        }
        if (seqLen < 1) {
            throw new ModException("sequences must hold at least one token");
        }
        if (seqLen > config.maxSeqLen()) {
            throw new ModException("sequence length " + seqLen + " is above the model's max_seq_len " + config.maxSeqLen());
        }
        checkActivations(config, (long) batch * seqLen, "a batch of " + batch + " x " + seqLen);
        int capacity = config.capacityTokens(seqLen);
        List<Layer> layers = new ArrayList<>();
        for (int i = 0; i < config.nLayers(); i++) {
            boolean routed = config.isRouted(i);
            layers.add(new Layer(i, routed, routed ? capacity : seqLen));
        }
        return new PlanShape(config, batch, seqLen, capacity, layers);
    }

    /**
     * The activations of `rows` rows (what: "a batch of B x T", "a chunk of n tokens") against Java's array limit
     * and the JVM's heap, before any plan allocates them.
     */
    public static void checkActivations(ModelConfig config, long rows, String what) {
        long widest = rows * Math.max(Math.max(config.vocabSize(), config.hiddenDim()),
                config.nHeads() * config.headDim() + 2L * config.kvDim());
        if (widest > ModelConfig.MAX_ARRAY) {
            throw new ModException(what + " needs an activation of " + widest + " floats, above Java's array limit of "
                    + ModelConfig.MAX_ARRAY);
        }
        // The residual stream, norms, q/k/v, attention, MLP and logits, as the plans hold them (an estimate from above).
        long activationFloats = rows * (8L * config.dim() + 3L * config.hiddenDim() + config.vocabSize());
        MemoryBudget.check("the activations of " + what, activationFloats * Float.BYTES);
    }

    /** B * T: the rows of the residual stream, the embedding and the head. */
    public int rows() {
        return batch * seqLen;
    }
}
