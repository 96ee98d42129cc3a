package dev.mod.tornado;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.annotations.Parallel;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

/**
 * Training's matrix products in the arena (see ArenaKernels), the forward product and its two gradients, in two
 * layouts chosen by device type (or tornado-config's mod.tornado.matmul):
 * <ul>
 * <li>plain, for CPU devices: one work-item per output, its k loop in a fixed order, which the OpenCL compiler
 * vectorises across neighbouring items;</li>
 * <li>{@link #productTiled}, for GPUs: one strided kernel for all three, a 64 x 64 output tile per work-group of
 * 16 x 16 items, both operands staged 16 steps of k at a time in local memory (transposed, padded by one word
 * against bank conflicts), each item holding a 4 x 4 register block whose rows and columns are 16 apart: the
 * forward plan's tiled layout (MatmulKernels.matmulTiled) over operands read through strides.</li>
 * </ul>
 * Each output is one item's sum over k in a fixed order in both layouts (no atomics): a run repeats bit for bit.
 * This class must be compiled with debug information (see TornadoKernels).
 */
public final class ArenaMatmul {
    private ArenaMatmul() {
    }

    // out[R, O] = x[R, I] . w[O, I]^T, one item per output in a fixed order
    public static void matmul(FloatArray a, int x, int w, int out, int rows, int in, int outDim) {
        for (@Parallel int idx = 0; idx < rows * outDim; idx++) {
            int r = idx / outDim;
            int o = idx % outDim;
            float sum = 0f;
            for (int i = 0; i < in; i++) {
                sum += a.get(x + r * in + i) * a.get(w + o * in + i);
            }
            a.set(out + idx, sum);
        }
    }

    // dx[R, I] = dout[R, O] . w[O, I] (add 1: +=)
    public static void matmulBackwardInput(FloatArray a, int dout, int w, int dx, int rows, int in, int outDim, int add) {
        for (@Parallel int idx = 0; idx < rows * in; idx++) {
            int r = idx / in;
            int i = idx % in;
            float sum = 0f;
            for (int o = 0; o < outDim; o++) {
                sum += a.get(dout + r * outDim + o) * a.get(w + o * in + i);
            }
            a.set(dx + idx, add == 1 ? a.get(dx + idx) + sum : sum);
        }
    }

    // dw[O, I] = dout[R, O]^T . x[R, I] (written)
    public static void matmulBackwardWeight(FloatArray a, int dout, int x, int dw, int rows, int in, int outDim) {
        for (@Parallel int idx = 0; idx < outDim * in; idx++) {
            int o = idx / in;
            int i = idx % in;
            float sum = 0f;
            for (int r = 0; r < rows; r++) {
                sum += a.get(dout + r * outDim + o) * a.get(x + r * in + i);
            }
            a.set(dw + idx, sum);
        }
    }

    /** The tiled form's output tile, its k step, and the items along each side of its work-group. */
    public static final int TILE = 64;
    public static final int TILE_K = 16;
    public static final int TILE_ITEMS = 16;

    // c[M, N] = (c +, when add is 1) sum over k < K of A(m, k) B(n, k), A(m, k) = a[aAt + m am + k ak] and
    // B(n, k) = a[bAt + n bn + k bk]: out = x w^T, dx = dout w and dW = dout^T x by their strides.
    // Grid: (ceil(N / TILE) * 16, ceil(M / TILE) * 16), local (16, 16).
    public static void productTiled(KernelContext context, FloatArray a, int aAt, int am, int ak, int bAt, int bn, int bk, int cAt,
                                    int m, int n, int k, int add) {
        int lx = context.localIdx;
        int ly = context.localIdy;
        int m0 = context.groupIdy * TILE;
        int n0 = context.groupIdx * TILE;
        int item = ly * TILE_ITEMS + lx;
        int side = TILE + 1;
        float[] aTile = context.allocateFloatLocalArray(TILE_K * (TILE + 1));
        float[] bTile = context.allocateFloatLocalArray(TILE_K * (TILE + 1));
        float[] acc = new float[16];
        for (int i = 0; i < 16; i++) {
            acc[i] = 0f;
        }
        for (int k0 = 0; k0 < k; k0 += TILE_K) {
            // 256 items stage 64 rows x 16 steps of k of each operand, 4 values each.
            for (int e = 0; e < 4; e++) {
                int idx = item + e * TILE_ITEMS * TILE_ITEMS;
                int row = idx / TILE_K;
                int kk = idx % TILE_K;
                int kAt = k0 + kk;
                aTile[kk * side + row] = m0 + row < m && kAt < k ? a.get(aAt + (m0 + row) * am + kAt * ak) : 0f;
                bTile[kk * side + row] = n0 + row < n && kAt < k ? a.get(bAt + (n0 + row) * bn + kAt * bk) : 0f;
            }
            context.localBarrier();
            for (int kk = 0; kk < TILE_K; kk++) {
                int base = kk * side;
                for (int i = 0; i < 4; i++) {
                    float x = aTile[base + ly + 16 * i];
                    for (int j = 0; j < 4; j++) {
                        acc[i * 4 + j] += x * bTile[base + lx + 16 * j];
                    }
                }
            }
            context.localBarrier();
        }
        for (int i = 0; i < 4; i++) {
            int row = m0 + ly + 16 * i;
            for (int j = 0; j < 4; j++) {
                int col = n0 + lx + 16 * j;
                if (row < m && col < n) {
                    int at = cAt + row * n + col;
                    a.set(at, add == 1 ? a.get(at) + acc[i * 4 + j] : acc[i * 4 + j]);
                }
            }
        }
    }
}
