package dev.mod.train;

/**
 * A training step over batches of B sequences of T tokens, whatever runs it: the cpu backend's TrainingPlan, or a device
 * backend's own. It works on the run's state (TrainState: the parameters and the optimizer's moments) where it runs, and
 * keeps the gradients there; the run loop (Trainer) hands it batches, asks for the optimizer's step, and reads back what
 * it logs.
 */
public interface TrainingPass extends AutoCloseable {
    /** Opens a pass for a run's settings on its state (fresh, or from a checkpoint). */
    @FunctionalInterface
    interface Opener {
        TrainingPass open(TrainSettings settings, TrainState state);
    }

    /**
     * Runs the batch: input[b][t] predicts target[b][t]. Returns the loss the gradients are of: the mean cross-entropy plus
     * the weighted auxiliary losses. A rule that routes at random draws from `draw` (the same draw, the same choices).
     */
    double forward(int[][] input, int[][] target, long draw);

    /** The gradients of the last forward()'s loss. */
    void backward();

    /** Scales the gradients to a global norm of at most maxNorm (0: none); returns their norm before. */
    double clipGradients(double maxNorm);

    /** One AdamW step at learning rate lr on the gradients. */
    void update(double lr);

    /** The run's state as of the last update, where the run loop can read it (a checkpoint, the model file). */
    TrainState state();

    /** Mean next-token cross-entropy of the last forward(). */
    double crossEntropy();

    /** Router BCE against the top-k choices, summed over routed layers, of the last forward(). */
    double routerLoss();

    /** Predictor BCE against the top-k choices, summed over routed layers, of the last forward() (0 without a predictor). */
    double predictorLoss();

    /**
     * Agreement with top-k in the last forward() of a causal decision per routed layer: the router's sigmoid(r) > 0.5
     * (predictor false) or the predictor's (true). NaN when the model has no predictor.
     */
    double agreement(int layer, boolean predictor);

    /** Share of the last forward()'s tokens the router rule would route in a routed layer: sigmoid(r) > 0.5. */
    double causalFraction(int layer);

    /** The most likely next token at row r (b * T + t) of the last forward(). */
    int argmax(int row);

    /** selected[B, k] positions of a routed layer in the last forward(). */
    int[] selected(int layer);

    /** The first layer whose input or output holds a non-finite value in the last forward(); -1 if none. */
    int firstNonFiniteLayer();

    /** Where the pass runs, for a run's log: "cpu, 2 threads", a device's name. */
    String device();

    /** The causal predictor's hidden size; 0 without one. */
    int predictorDim();

    @Override
    void close();
}
