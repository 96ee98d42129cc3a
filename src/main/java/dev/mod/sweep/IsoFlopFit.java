package dev.mod.sweep;

/**
 * The isoFLOP curve of one budget: held-out loss against u = log10(parameters), fitted by least squares with a
 * parabola loss = a u^2 + b u + c, as the paper (and Chinchilla's approach 2) do. Its minimum, at u* = -b / 2a,
 * estimates the compute-optimal size; a curve that opens downwards, or whose minimum lies outside the sizes
 * trained, has no minimum to report (null), since a parabola says nothing beyond its points.
 */
public record IsoFlopFit(double a, double b, double c, Double optimalParams, Double optimalLoss) {

    /** Fits at least three points (params > 0) of distinct sizes. */
    public static IsoFlopFit of(double[] params, double[] loss) {
        if (params.length != loss.length || params.length < 3) {
            throw new IllegalArgumentException("a parabola needs at least three points, got " + params.length);
        }
        // normal equations of [u^2 u 1] x = loss, with u centred on its mean for conditioning
        int n = params.length;
        double mean = 0;
        for (double p : params) {
            mean += Math.log10(p) / n;
        }
        double[][] m = new double[3][4];
        double lo = Double.POSITIVE_INFINITY;
        double hi = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) {
            double u = Math.log10(params[i]) - mean;
            lo = Math.min(lo, u);
            hi = Math.max(hi, u);
            double[] row = {u * u, u, 1};
            for (int r = 0; r < 3; r++) {
                for (int col = 0; col < 3; col++) {
                    m[r][col] += row[r] * row[col];
                }
                m[r][3] += row[r] * loss[i];
            }
        }
        double[] x = solve(m);
        if (x == null) {
            throw new IllegalArgumentException("the points do not determine a parabola (fewer than three distinct sizes)");
        }
        // back from centred u to log10(params): a (u - mean)^2 + b' (u - mean) + c'
        double a = x[0];
        double b = x[1] - 2 * a * mean;
        double c = x[2] - x[1] * mean + a * mean * mean;
        Double optimalParams = null;
        Double optimalLoss = null;
        if (a > 0) {
            double centred = -x[1] / (2 * a);
            if (centred >= lo && centred <= hi) {
                optimalParams = Math.pow(10, centred + mean);
                optimalLoss = x[2] - x[1] * x[1] / (4 * a);
            }
        }
        return new IsoFlopFit(a, b, c, optimalParams, optimalLoss);
    }

    /** The fitted loss at a parameter count. */
    public double loss(double params) {
        double u = Math.log10(params);
        return a * u * u + b * u + c;
    }

    // Gaussian elimination with partial pivoting of a 3x4 augmented matrix; null when singular
    private static double[] solve(double[][] m) {
        for (int col = 0; col < 3; col++) {
            int pivot = col;
            for (int r = col + 1; r < 3; r++) {
                if (Math.abs(m[r][col]) > Math.abs(m[pivot][col])) {
                    pivot = r;
                }
            }
            if (Math.abs(m[pivot][col]) < 1e-12) {
                return null;
            }
            double[] t = m[col];
            m[col] = m[pivot];
            m[pivot] = t;
            for (int r = 0; r < 3; r++) {
                if (r != col) {
                    double f = m[r][col] / m[col][col];
                    for (int k = col; k < 4; k++) {
                        m[r][k] -= f * m[col][k];
                    }
                }
            }
        }
        return new double[] {m[0][3] / m[0][0], m[1][3] / m[1][1], m[2][3] / m[2][2]};
    }
}
