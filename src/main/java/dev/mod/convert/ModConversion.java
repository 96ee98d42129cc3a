package dev.mod.convert;

import dev.mod.ModException;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.RouterWeighting;
import dev.mod.model.Tensor;
import dev.mod.plan.ForwardPlan;
import dev.mod.plan.Kernels;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A dense model turned into a MoD model: the same weights, some blocks routed at a capacity, and a router per routed
 * block. A routed block adds r * f for the tokens it selects (raw weighting, the paper's) and nothing for the others,
 * so the model is closest to the dense one when r is about 1 on the tokens it sees: each router is fitted, by ridge
 * regression, to r = w . x = 1 over the residual stream x that enters its block when the dense model runs the
 * calibration tokens. At capacity 1 the converted model then computes almost exactly the dense one; below it, the
 * tokens a block skips are the difference that tuning (mod train --init-from) has to recover.
 */
public final class ModConversion {
    /** Ridge strength, relative to the mean of x . x over the calibration tokens: enough to keep w small where x is flat. */
    static final double RIDGE = 1e-3;

    /** How well each router fits r = 1 on the calibration tokens: mean and standard deviation of r. */
    public record RouterFit(int layer, double mean, double sd) {
    }

    public record Result(Model model, List<RouterFit> fits) {
    }

    private ModConversion() {
    }

    /** The MoD model; calibration[N][T] token ids of the dense model's vocabulary; kernels run the dense model. */
    public static Result toMod(Model dense, double capacity, List<Integer> routedLayers, int[][] calibration, Kernels kernels) {
        ModelConfig c = dense.config();
        if (!c.routedLayers().isEmpty()) {
            throw new ModException("the model is already a MoD model (routed layers " + c.routedLayers() + ")");
        }
        ModelConfig mod = new ModelConfig(c.vocabSize(), c.dim(), c.nLayers(), c.nHeads(), c.nKvHeads(), c.hiddenDim(), c.normEps(),
                c.ropeTheta(), c.maxSeqLen(), capacity, routedLayers, RouterWeighting.RAW);
        Map<String, Tensor> tensors = new LinkedHashMap<>(dense.tensors());
        List<RouterFit> fits = new java.util.ArrayList<>();
        for (int layer : routedLayers) {
            double[][] x = residualStream(dense, layer, calibration, kernels);
            double[] w = fitToOne(x);
            double sum = 0;
            double sumSq = 0;
            for (double[] row : x) {
                double r = dot(w, row);
                sum += r;
                sumSq += r * r;
            }
            double mean = sum / x.length;
            fits.add(new RouterFit(layer, mean, Math.sqrt(Math.max(0, sumSq / x.length - mean * mean))));
            float[] weights = new float[w.length];
            for (int i = 0; i < w.length; i++) {
                weights[i] = (float) w[i];
            }
            tensors.put("layers." + layer + ".router.weight", Tensor.of("layers." + layer + ".router.weight", weights, 1, c.dim()));
        }
        return new Result(new Model(mod, tensors, null, null, dense.tokenizer()), fits);
    }

    /** x[N * T][d]: the residual stream entering block `layer` of the dense model, over the calibration tokens. */
    static double[][] residualStream(Model dense, int layer, int[][] tokens, Kernels kernels) {
        ModelConfig c = dense.config();
        int n = tokens.length;
        int t = tokens[0].length;
        double[][] x = new double[n * t][c.dim()];
        if (layer == 0) {
            Tensor e = dense.embeddings();
            for (int s = 0; s < n; s++) {
                for (int i = 0; i < t; i++) {
                    for (int j = 0; j < c.dim(); j++) {
                        x[s * t + i][j] = e.get((long) tokens[s][i] * c.dim() + j);
                    }
                }
            }
            return x;
        }
        ForwardPlan plan = new ForwardPlan(firstLayers(dense, layer), kernels, n, t);
        plan.run(tokens);
        float[] hidden = plan.hidden();
        for (int row = 0; row < n * t; row++) {
            for (int j = 0; j < c.dim(); j++) {
                x[row][j] = hidden[row * c.dim() + j];
            }
        }
        return x;
    }

    /** The dense model cut after `layers` blocks: its hidden state is what enters block `layers`. */
    static Model firstLayers(Model dense, int layers) {
        ModelConfig c = dense.config();
        ModelConfig cut = new ModelConfig(c.vocabSize(), c.dim(), layers, c.nHeads(), c.nKvHeads(), c.hiddenDim(), c.normEps(),
                c.ropeTheta(), c.maxSeqLen(), c.capacity(), List.of(), c.routerWeighting());
        Map<String, Tensor> kept = new TreeMap<>();
        for (String name : cut.tensorShapes().keySet()) {
            kept.put(name, dense.tensor(name));
        }
        return new Model(cut, kept, null);
    }

    /** w minimising sum (w . x - 1)^2 + lambda |w|^2, lambda = RIDGE * mean(x . x): (X^T X + lambda I) w = X^T 1. */
    static double[] fitToOne(double[][] x) {
        int d = x[0].length;
        double[][] a = new double[d][d];
        double[] b = new double[d];
        double trace = 0;
        for (double[] row : x) {
            for (int i = 0; i < d; i++) {
                b[i] += row[i];
                for (int j = 0; j <= i; j++) {
                    a[i][j] += row[i] * row[j];
                }
            }
        }
        for (int i = 0; i < d; i++) {
            trace += a[i][i];
        }
        double lambda = RIDGE * Math.max(trace / x.length, 1e-12);
        for (int i = 0; i < d; i++) {
            a[i][i] += lambda;
        }
        return choleskySolve(a, b);
    }

    /** Solves A w = b for a symmetric positive definite A given by its lower triangle (overwritten by its factor). */
    static double[] choleskySolve(double[][] a, double[] b) {
        int d = b.length;
        for (int j = 0; j < d; j++) {
            double s = a[j][j];
            for (int k = 0; k < j; k++) {
                s -= a[j][k] * a[j][k];
            }
            if (!(s > 0)) {
                throw new ModException("router fit: the calibration's residual stream is degenerate (not positive definite)");
            }
            a[j][j] = Math.sqrt(s);
            for (int i = j + 1; i < d; i++) {
                double v = a[i][j];
                for (int k = 0; k < j; k++) {
                    v -= a[i][k] * a[j][k];
                }
                a[i][j] = v / a[j][j];
            }
        }
        double[] y = new double[d];
        for (int i = 0; i < d; i++) {
            double v = b[i];
            for (int k = 0; k < i; k++) {
                v -= a[i][k] * y[k];
            }
            y[i] = v / a[i][i];
        }
        double[] w = new double[d];
        for (int i = d - 1; i >= 0; i--) {
            double v = y[i];
            for (int k = i + 1; k < d; k++) {
                v -= a[k][i] * w[k];
            }
            w[i] = v / a[i][i];
        }
        return w;
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }
}
