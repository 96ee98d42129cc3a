package dev.mod.train;

import dev.mod.cpu.VectorMath;
import dev.mod.cpu.WorkerPool;

import java.util.ArrayList;
import java.util.List;

/**
 * AdamW (Loshchilov and Hutter): Adam with bias correction and weight decay decoupled from the gradient,
 * applied to matrices only (norm weights and the router's vector are not decayed). The moments are FP32
 * arrays beside the FP32 master weights; a checkpoint stores them with the step count. The update and the
 * gradient norm run on the training plan's threads in fixed segments of the tensors, so the results do not
 * depend on the thread count.
 */
public final class AdamW implements WorkerPool.Task {
    private static final int SEGMENT = 1 << 16;

    private final double beta1 = 0.9;
    private final double beta2 = 0.95;
    private final double eps = 1e-8;
    private final double weightDecay;
    private final Parameters m;
    private final Parameters v;
    private long step;

    // the tensors cut into segments, set up on first use: segment s is [start, end) of tensor index[s]
    private Parameters params;
    private Parameters grads;
    private int[] tensorOf;
    private int[] starts;
    private int[] ends;
    private double[] sums;
    private String[] names;
    private double[] decays;

    // the call in progress
    private int mode;
    private double lr;
    private double c1;
    private double c2;
    private float scale;

    private static final int UPDATE = 0;
    private static final int SUM_SQUARES = 1;
    private static final int SCALE = 2;

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

    // params -= lr * (mhat / (sqrt(vhat) + eps) + wd * params), m and v the moving averages of g and g^2
    public void update(WorkerPool pool, Parameters params, Parameters grads, double lr) {
        segment(params, grads);
        step++;
        this.c1 = 1 - Math.pow(beta1, step);
        this.c2 = 1 - Math.pow(beta2, step);
        this.lr = lr;
        mode = UPDATE;
        pool.run(this, starts.length);
    }

    /** Scales the gradients so that their global L2 norm is at most maxNorm (0: no clipping); returns the norm before. */
    public double clip(WorkerPool pool, Parameters params, Parameters grads, double maxNorm) {
        segment(params, grads);
        mode = SUM_SQUARES;
        pool.run(this, starts.length);
        double sum = 0;
        for (double s : sums) {
            sum += s;
        }
        double norm = Math.sqrt(sum);
        if (maxNorm > 0 && norm > maxNorm) {
            scale = (float) (maxNorm / norm);
            mode = SCALE;
            pool.run(this, starts.length);
        }
        return norm;
    }

    private void segment(Parameters p, Parameters g) {
        if (params == p && grads == g) {
            return;
        }
        params = p;
        grads = g;
        names = p.names().toArray(new String[0]);
        decays = new double[names.length];
        List<int[]> segments = new ArrayList<>();
        for (int t = 0; t < names.length; t++) {
            decays[t] = p.shape(names[t]).length == 2 && !names[t].endsWith("router.weight") ? weightDecay : 0;
            int length = p.get(names[t]).length;
            for (int start = 0; start < length; start += SEGMENT) {
                segments.add(new int[] {t, start, Math.min(length, start + SEGMENT)});
            }
        }
        tensorOf = segments.stream().mapToInt(s -> s[0]).toArray();
        starts = segments.stream().mapToInt(s -> s[1]).toArray();
        ends = segments.stream().mapToInt(s -> s[2]).toArray();
        sums = new double[segments.size()];
    }

    @Override
    public void run(int segment, int worker) {
        String name = names[tensorOf[segment]];
        float[] g = grads.get(name);
        int from = starts[segment];
        int to = ends[segment];
        switch (mode) {
            case SUM_SQUARES -> sums[segment] = sumOfSquares(g, from, to);
            case SCALE -> {
                for (int i = from; i < to; i++) {
                    g[i] *= scale;
                }
            }
            default -> {
                float[] p = params.get(name);
                float[] mm = m.get(name);
                float[] vv = v.get(name);
                double decay = decays[tensorOf[segment]];
                double b1 = beta1;
                double b2 = beta2;
                double inverseC1 = 1 / c1;
                double inverseC2 = 1 / c2;
                double rate = lr;
                for (int i = from; i < to; i++) {
                    float gi = g[i];
                    float mi = (float) (b1 * mm[i] + (1 - b1) * gi);
                    float vi = (float) (b2 * vv[i] + (1 - b2) * gi * gi);
                    mm[i] = mi;
                    vv[i] = vi;
                    double update = mi * inverseC1 / (Math.sqrt(vi * inverseC2) + eps) + decay * p[i];
                    p[i] = (float) (p[i] - rate * update);
                }
            }
        }
    }

    // sum of g[from..to)^2: float dot products over blocks of 1024 (a short chain of float rounding), the blocks'
    // sums in double; a plain double loop is one long chain of dependent adds, several times slower
    private static double sumOfSquares(float[] g, int from, int to) {
        double sum = 0;
        int i = from;
        for (; i + 1024 <= to; i += 1024) {
            // VectorMath.dot adds its lanes in a fixed order: reduceLanes' order may change with the JIT tier,
            // which made the clipped gradients, and so whole training runs, differ from JVM to JVM.
            sum += VectorMath.dot(g, i, g, i, 1024);
        }
        for (; i < to; i++) {
            sum += (double) g[i] * g[i];
        }
        return sum;
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
