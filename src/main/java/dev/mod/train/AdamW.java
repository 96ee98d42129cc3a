package dev.mod.train;

/**
 * AdamW (Loshchilov and Hutter): Adam with bias correction and weight decay decoupled from the gradient,
 * applied to matrices only (norm weights and the router's vector are not decayed). This is the optimizer's state
 * and rules: the FP32 moments beside the FP32 master weights and the step count, which a checkpoint stores; a
 * backend's {@link TrainingKernels#update} applies a step.
 */
public final class AdamW {
    public static final double BETA1 = 0.9;
    public static final double BETA2 = 0.95;
    public static final double EPS = 1e-8;

    private final double weightDecay;
    private final Parameters m;
    private final Parameters v;
    private long step;

    public AdamW(Parameters params, double weightDecay) {
        this(params.zerosLike(), params.zerosLike(), 0, weightDecay);
    }

    /** Resumed from stored moments after `step` updates. */
    public AdamW(Parameters m, Parameters v, long step, double weightDecay) {
        this.weightDecay = weightDecay;
        this.m = m;
        this.v = v;
        this.step = step;
    }

    /** The decoupled weight decay of a tensor: the matrices' (not the router's vector, stored as a [1, d] matrix), else 0. */
    public double decay(String name, long[] shape) {
        return decays(name, shape) ? weightDecay : 0;
    }

    /** Whether a tensor is one that weight decay applies to: a matrix (the router's vector is stored as a [1, d] one). */
    public static boolean decays(String name, long[] shape) {
        return shape.length == 2 && !name.endsWith("router.weight");
    }

    /** Counts the step an update is about to take and returns it (1 for the first). */
    public long advance() {
        return ++step;
    }

    public Parameters m() {
        return m;
    }

    public Parameters v() {
        return v;
    }

    public long step() {
        return step;
    }

    // lr(step) = peak * step / warmup during warm-up, then cosine from peak down to minRatio * peak at `total`
    public static double learningRate(long step, double peak, long warmup, long total, double minRatio) {
        if (step < warmup) {
            return peak * (step + 1) / warmup;
        }
        double progress = total <= warmup ? 1 : Math.min(1, (double) (step - warmup) / (total - warmup));
        return peak * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
    }
}
