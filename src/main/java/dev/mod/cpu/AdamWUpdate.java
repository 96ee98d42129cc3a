package dev.mod.cpu;

import dev.mod.train.AdamW;
import dev.mod.train.Parameters;

import java.util.ArrayList;
import java.util.List;

/**
 * AdamW's step and the gradients' clipping on the cpu backend's threads, over fixed segments of the tensors, so that
 * the results do not depend on the thread count.
 */
final class AdamWUpdate implements WorkerPool.Task {
    private static final int SEGMENT = 1 << 16;

    private final WorkerPool pool;

    // the gradients cut into segments, set up on first use: segment s is [start, end) of tensor tensorOf[s]
    private Parameters grads;
    private AdamW optimizer;
    private int[] tensorOf;
    private int[] starts;
    private int[] ends;
    private double[] sums;
    private String[] names;
    private double[] decays;

    // the call in progress
    private Parameters params;
    private int mode;
    private double lr;
    private double c1;
    private double c2;
    private float scale;

    private static final int UPDATE = 0;
    private static final int SUM_SQUARES = 1;
    private static final int SCALE = 2;

    AdamWUpdate(WorkerPool pool) {
        this.pool = pool;
    }

    // params -= lr * (mhat / (sqrt(vhat) + eps) + wd * params), m and v the moving averages of g and g^2
    void update(AdamW optimizer, Parameters params, Parameters grads, double lr) {
        segment(grads);
        if (this.optimizer != optimizer) {
            this.optimizer = optimizer;
            for (int t = 0; t < names.length; t++) {
                decays[t] = optimizer.decay(names[t], grads.shape(names[t]));
            }
        }
        this.params = params;
        long step = optimizer.advance();
        this.c1 = 1 - Math.pow(AdamW.BETA1, step);
        this.c2 = 1 - Math.pow(AdamW.BETA2, step);
        this.lr = lr;
        mode = UPDATE;
        pool.run(this, starts.length);
    }

    // the global L2 norm of grads; scaled so that it is at most maxNorm (0: no clipping)
    double clip(Parameters grads, double maxNorm) {
        segment(grads);
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

    // the tensors of g cut into segments, once per set of gradients
    private void segment(Parameters g) {
        if (grads == g) {
            return;
        }
        grads = g;
        optimizer = null;
        names = g.names().toArray(new String[0]);
        decays = new double[names.length];
        List<int[]> segments = new ArrayList<>();
        for (int t = 0; t < names.length; t++) {
            int length = g.get(names[t]).length;
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
                float[] mm = optimizer.m().get(name);
                float[] vv = optimizer.v().get(name);
                double decay = decays[tensorOf[segment]];
                double b1 = AdamW.BETA1;
                double b2 = AdamW.BETA2;
                double inverseC1 = 1 / c1;
                double inverseC2 = 1 / c2;
                double rate = lr;
                for (int i = from; i < to; i++) {
                    float gi = g[i];
                    float mi = (float) (b1 * mm[i] + (1 - b1) * gi);
                    float vi = (float) (b2 * vv[i] + (1 - b2) * gi * gi);
                    mm[i] = mi;
                    vv[i] = vi;
                    double update = mi * inverseC1 / (Math.sqrt(vi * inverseC2) + AdamW.EPS) + decay * p[i];
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
}
