package dev.mod.train;

/**
 * AdamW (Loshchilov and Hutter): Adam with bias correction and weight decay decoupled from the gradient,
 * applied to matrices only (norm weights and the router's vector are not decayed). The moments are FP32
 * arrays beside the FP32 master weights; a checkpoint stores them with the step count.
 */
public final class AdamW {
    private final double beta1;
    private final double beta2;
    private final double eps;
    private final double weightDecay;
    private final Parameters m;
    private final Parameters v;
    private long step;

    public AdamW(Parameters params, double weightDecay) {
        this(params.zerosLike(), params.zerosLike(), 0, weightDecay);
    }

    /** Resumed from stored moments after `step` updates. */
    public AdamW(Parameters m, Parameters v, long step, double weightDecay) {
        this.beta1 = 0.9;
        this.beta2 = 0.95;
        this.eps = 1e-8;
        this.weightDecay = weightDecay;
        this.m = m;
        this.v = v;
        this.step = step;
    }

    // params -= lr * (mhat / (sqrt(vhat) + eps) + wd * params), m and v the moving averages of g and g^2
    public void update(Parameters params, Parameters grads, double lr) {
        step++;
        double c1 = 1 - Math.pow(beta1, step);
        double c2 = 1 - Math.pow(beta2, step);
        for (String name : params.names()) {
            float[] p = params.get(name);
            float[] g = grads.get(name);
            float[] mm = m.get(name);
            float[] vv = v.get(name);
            double decay = params.shape(name).length == 2 && !name.endsWith("router.weight") ? weightDecay : 0;
            for (int i = 0; i < p.length; i++) {
                mm[i] = (float) (beta1 * mm[i] + (1 - beta1) * g[i]);
                vv[i] = (float) (beta2 * vv[i] + (1 - beta2) * g[i] * g[i]);
                double update = (mm[i] / c1) / (Math.sqrt(vv[i] / c2) + eps) + decay * p[i];
                p[i] = (float) (p[i] - lr * update);
            }
        }
    }

    /** Scales the gradients so that their global L2 norm is at most maxNorm; returns the norm before. */
    public static double clip(Parameters grads, double maxNorm) {
        double sum = 0;
        for (String name : grads.names()) {
            for (float g : grads.get(name)) {
                sum += (double) g * g;
            }
        }
        double norm = Math.sqrt(sum);
        if (maxNorm > 0 && norm > maxNorm) {
            float scale = (float) (maxNorm / norm);
            for (String name : grads.names()) {
                float[] g = grads.get(name);
                for (int i = 0; i < g.length; i++) {
                    g[i] *= scale;
                }
            }
        }
        return norm;
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
