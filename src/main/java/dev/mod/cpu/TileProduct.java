package dev.mod.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Small dense products inside the attention kernels (scores, weighted values and their gradients), where the
 * operands are already in cache and too small and too oddly strided for the packed {@link Gemm}. Tiles of 6 or 4 rows
 * x 4 vectors (then 4 rows x 1 vector) of C are summed in registers: per step of k, 6 (4) broadcasts of A and 4
 * vectors of B feed 24 (16) FMAs. 6-row tiles (24 accumulators) need 32 vector registers, so they are used with
 * 512-bit vectors (AVX-512, where they ran 1.28x the 4-row tiles' GFLOP/s on Zen 5); K is taken in blocks of {@link #KB}, and within a block every row of C passes over one
 * tile of B before the next, so that the tile (KB x 4 vectors) is read from L1. M must be a multiple of 4 and N of
 * the vector length; A may be read transposed (aCol != 1).
 */
public final class TileProduct {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    /** Depth of a block: 64 steps of a 4-vector tile of B fill 16 KB of L1 with 512-bit vectors. */
    private static final int KB = 64;
    /** Whether the machine has the registers for 6-row tiles: AVX-512 (and 512-bit vectors generally) has 32. */
    private static final boolean SIX_ROWS = S.vectorBitSize() >= 512;

    private TileProduct() {
    }

    // c[M, N] (+)= A[M, K] . B[K, N]; C(i, j) = c[c0 + i * cRow + j], A(i, k) = a[a0 + i * aRow + k * aCol], B(k, j) = b[b0 + k * bRow + j]
    public static void multiply(float[] c, int c0, int cRow, float[] a, int a0, int aRow, int aCol, float[] b, int b0, int bRow,
                                int rowsM, int colsN, int depthK, boolean accumulate) {
        for (int k0 = 0; k0 < depthK; k0 += KB) {
            int k1 = Math.min(depthK, k0 + KB);
            boolean add = accumulate || k0 > 0;
            // rows in tiles of 6 while the rest stays a multiple of 4, then of 4
            int sixes = SIX_ROWS ? rowsM / 12 * 12 : 0;
            int j = 0;
            for (; j + 4 * L <= colsN; j += 4 * L) {
                int i = 0;
                for (; i < sixes; i += 6) {
                    tile6x4(c, c0 + i * cRow + j, cRow, a, a0 + i * aRow, aRow, aCol, b, b0 + j, bRow, k0, k1, add);
                }
                for (; i < rowsM; i += 4) {
                    tile4x4(c, c0 + i * cRow + j, cRow, a, a0 + i * aRow, aRow, aCol, b, b0 + j, bRow, k0, k1, add);
                }
            }
            for (; j < colsN; j += L) {
                for (int i = 0; i < rowsM; i += 4) {
                    tile4x1(c, c0 + i * cRow + j, cRow, a, a0 + i * aRow, aRow, aCol, b, b0 + j, bRow, k0, k1, add);
                }
            }
        }
    }

    // 6 rows x 4 vectors of C (+)= A[6 rows, k0..k1) . B[k0..k1, 4 vectors]; offsets of the tile's first row, column
    private static void tile6x4(float[] c, int c0, int cRow, float[] a, int a0, int aRow, int aCol, float[] b, int bFirst, int bRow,
                                int k0, int k1, boolean accumulate) {
        int c1 = c0 + cRow;
        int c2 = c1 + cRow;
        int c3 = c2 + cRow;
        int c4 = c3 + cRow;
        int c5 = c4 + cRow;
        FloatVector s00, s01, s02, s03, s10, s11, s12, s13, s20, s21, s22, s23;
        FloatVector s30, s31, s32, s33, s40, s41, s42, s43, s50, s51, s52, s53;
        if (accumulate) {
            s00 = FloatVector.fromArray(S, c, c0);
            s01 = FloatVector.fromArray(S, c, c0 + L);
            s02 = FloatVector.fromArray(S, c, c0 + 2 * L);
            s03 = FloatVector.fromArray(S, c, c0 + 3 * L);
            s10 = FloatVector.fromArray(S, c, c1);
            s11 = FloatVector.fromArray(S, c, c1 + L);
            s12 = FloatVector.fromArray(S, c, c1 + 2 * L);
            s13 = FloatVector.fromArray(S, c, c1 + 3 * L);
            s20 = FloatVector.fromArray(S, c, c2);
            s21 = FloatVector.fromArray(S, c, c2 + L);
            s22 = FloatVector.fromArray(S, c, c2 + 2 * L);
            s23 = FloatVector.fromArray(S, c, c2 + 3 * L);
            s30 = FloatVector.fromArray(S, c, c3);
            s31 = FloatVector.fromArray(S, c, c3 + L);
            s32 = FloatVector.fromArray(S, c, c3 + 2 * L);
            s33 = FloatVector.fromArray(S, c, c3 + 3 * L);
            s40 = FloatVector.fromArray(S, c, c4);
            s41 = FloatVector.fromArray(S, c, c4 + L);
            s42 = FloatVector.fromArray(S, c, c4 + 2 * L);
            s43 = FloatVector.fromArray(S, c, c4 + 3 * L);
            s50 = FloatVector.fromArray(S, c, c5);
            s51 = FloatVector.fromArray(S, c, c5 + L);
            s52 = FloatVector.fromArray(S, c, c5 + 2 * L);
            s53 = FloatVector.fromArray(S, c, c5 + 3 * L);
        } else {
            s00 = FloatVector.zero(S);
            s01 = s00;
            s02 = s00;
            s03 = s00;
            s10 = s00;
            s11 = s00;
            s12 = s00;
            s13 = s00;
            s20 = s00;
            s21 = s00;
            s22 = s00;
            s23 = s00;
            s30 = s00;
            s31 = s00;
            s32 = s00;
            s33 = s00;
            s40 = s00;
            s41 = s00;
            s42 = s00;
            s43 = s00;
            s50 = s00;
            s51 = s00;
            s52 = s00;
            s53 = s00;
        }
        int a1 = a0 + aRow;
        int a2 = a1 + aRow;
        int a3 = a2 + aRow;
        int a4 = a3 + aRow;
        int a5 = a4 + aRow;
        for (int kk = k0; kk < k1; kk++) {
            int bk = bFirst + kk * bRow;
            int ak = kk * aCol;
            FloatVector b0 = FloatVector.fromArray(S, b, bk);
            FloatVector b1 = FloatVector.fromArray(S, b, bk + L);
            FloatVector b2 = FloatVector.fromArray(S, b, bk + 2 * L);
            FloatVector b3 = FloatVector.fromArray(S, b, bk + 3 * L);
            FloatVector x = FloatVector.broadcast(S, a[a0 + ak]);
            s00 = b0.fma(x, s00);
            s01 = b1.fma(x, s01);
            s02 = b2.fma(x, s02);
            s03 = b3.fma(x, s03);
            x = FloatVector.broadcast(S, a[a1 + ak]);
            s10 = b0.fma(x, s10);
            s11 = b1.fma(x, s11);
            s12 = b2.fma(x, s12);
            s13 = b3.fma(x, s13);
            x = FloatVector.broadcast(S, a[a2 + ak]);
            s20 = b0.fma(x, s20);
            s21 = b1.fma(x, s21);
            s22 = b2.fma(x, s22);
            s23 = b3.fma(x, s23);
            x = FloatVector.broadcast(S, a[a3 + ak]);
            s30 = b0.fma(x, s30);
            s31 = b1.fma(x, s31);
            s32 = b2.fma(x, s32);
            s33 = b3.fma(x, s33);
            x = FloatVector.broadcast(S, a[a4 + ak]);
            s40 = b0.fma(x, s40);
            s41 = b1.fma(x, s41);
            s42 = b2.fma(x, s42);
            s43 = b3.fma(x, s43);
            x = FloatVector.broadcast(S, a[a5 + ak]);
            s50 = b0.fma(x, s50);
            s51 = b1.fma(x, s51);
            s52 = b2.fma(x, s52);
            s53 = b3.fma(x, s53);
        }
        s00.intoArray(c, c0);
        s01.intoArray(c, c0 + L);
        s02.intoArray(c, c0 + 2 * L);
        s03.intoArray(c, c0 + 3 * L);
        s10.intoArray(c, c1);
        s11.intoArray(c, c1 + L);
        s12.intoArray(c, c1 + 2 * L);
        s13.intoArray(c, c1 + 3 * L);
        s20.intoArray(c, c2);
        s21.intoArray(c, c2 + L);
        s22.intoArray(c, c2 + 2 * L);
        s23.intoArray(c, c2 + 3 * L);
        s30.intoArray(c, c3);
        s31.intoArray(c, c3 + L);
        s32.intoArray(c, c3 + 2 * L);
        s33.intoArray(c, c3 + 3 * L);
        s40.intoArray(c, c4);
        s41.intoArray(c, c4 + L);
        s42.intoArray(c, c4 + 2 * L);
        s43.intoArray(c, c4 + 3 * L);
        s50.intoArray(c, c5);
        s51.intoArray(c, c5 + L);
        s52.intoArray(c, c5 + 2 * L);
        s53.intoArray(c, c5 + 3 * L);
    }

    // 4 rows x 4 vectors of C (+)= A[4 rows, k0..k1) . B[k0..k1, 4 vectors]; offsets of the tile's first row, column
    private static void tile4x4(float[] c, int c0, int cRow, float[] a, int a0, int aRow, int aCol, float[] b, int bFirst, int bRow,
                                int k0, int k1, boolean accumulate) {
        int c1 = c0 + cRow;
        int c2 = c1 + cRow;
        int c3 = c2 + cRow;
        FloatVector s00, s01, s02, s03, s10, s11, s12, s13, s20, s21, s22, s23, s30, s31, s32, s33;
        if (accumulate) {
            s00 = FloatVector.fromArray(S, c, c0);
            s01 = FloatVector.fromArray(S, c, c0 + L);
            s02 = FloatVector.fromArray(S, c, c0 + 2 * L);
            s03 = FloatVector.fromArray(S, c, c0 + 3 * L);
            s10 = FloatVector.fromArray(S, c, c1);
            s11 = FloatVector.fromArray(S, c, c1 + L);
            s12 = FloatVector.fromArray(S, c, c1 + 2 * L);
            s13 = FloatVector.fromArray(S, c, c1 + 3 * L);
            s20 = FloatVector.fromArray(S, c, c2);
            s21 = FloatVector.fromArray(S, c, c2 + L);
            s22 = FloatVector.fromArray(S, c, c2 + 2 * L);
            s23 = FloatVector.fromArray(S, c, c2 + 3 * L);
            s30 = FloatVector.fromArray(S, c, c3);
            s31 = FloatVector.fromArray(S, c, c3 + L);
            s32 = FloatVector.fromArray(S, c, c3 + 2 * L);
            s33 = FloatVector.fromArray(S, c, c3 + 3 * L);
        } else {
            s00 = FloatVector.zero(S);
            s01 = s00;
            s02 = s00;
            s03 = s00;
            s10 = s00;
            s11 = s00;
            s12 = s00;
            s13 = s00;
            s20 = s00;
            s21 = s00;
            s22 = s00;
            s23 = s00;
            s30 = s00;
            s31 = s00;
            s32 = s00;
            s33 = s00;
        }
        int a1 = a0 + aRow;
        int a2 = a1 + aRow;
        int a3 = a2 + aRow;
        for (int kk = k0; kk < k1; kk++) {
            int bk = bFirst + kk * bRow;
            int ak = kk * aCol;
            FloatVector b0 = FloatVector.fromArray(S, b, bk);
            FloatVector b1 = FloatVector.fromArray(S, b, bk + L);
            FloatVector b2 = FloatVector.fromArray(S, b, bk + 2 * L);
            FloatVector b3 = FloatVector.fromArray(S, b, bk + 3 * L);
            FloatVector x = FloatVector.broadcast(S, a[a0 + ak]);
            s00 = b0.fma(x, s00);
            s01 = b1.fma(x, s01);
            s02 = b2.fma(x, s02);
            s03 = b3.fma(x, s03);
            x = FloatVector.broadcast(S, a[a1 + ak]);
            s10 = b0.fma(x, s10);
            s11 = b1.fma(x, s11);
            s12 = b2.fma(x, s12);
            s13 = b3.fma(x, s13);
            x = FloatVector.broadcast(S, a[a2 + ak]);
            s20 = b0.fma(x, s20);
            s21 = b1.fma(x, s21);
            s22 = b2.fma(x, s22);
            s23 = b3.fma(x, s23);
            x = FloatVector.broadcast(S, a[a3 + ak]);
            s30 = b0.fma(x, s30);
            s31 = b1.fma(x, s31);
            s32 = b2.fma(x, s32);
            s33 = b3.fma(x, s33);
        }
        s00.intoArray(c, c0);
        s01.intoArray(c, c0 + L);
        s02.intoArray(c, c0 + 2 * L);
        s03.intoArray(c, c0 + 3 * L);
        s10.intoArray(c, c1);
        s11.intoArray(c, c1 + L);
        s12.intoArray(c, c1 + 2 * L);
        s13.intoArray(c, c1 + 3 * L);
        s20.intoArray(c, c2);
        s21.intoArray(c, c2 + L);
        s22.intoArray(c, c2 + 2 * L);
        s23.intoArray(c, c2 + 3 * L);
        s30.intoArray(c, c3);
        s31.intoArray(c, c3 + L);
        s32.intoArray(c, c3 + 2 * L);
        s33.intoArray(c, c3 + 3 * L);
    }

    // 4 rows x 1 vector of C (+)= A[4 rows, k0..k1) . B[k0..k1, 1 vector]
    private static void tile4x1(float[] c, int c0, int cRow, float[] a, int a0, int aRow, int aCol, float[] b, int bFirst, int bRow,
                                int k0, int k1, boolean accumulate) {
        int c1 = c0 + cRow;
        int c2 = c1 + cRow;
        int c3 = c2 + cRow;
        FloatVector s0, s1, s2, s3;
        if (accumulate) {
            s0 = FloatVector.fromArray(S, c, c0);
            s1 = FloatVector.fromArray(S, c, c1);
            s2 = FloatVector.fromArray(S, c, c2);
            s3 = FloatVector.fromArray(S, c, c3);
        } else {
            s0 = FloatVector.zero(S);
            s1 = s0;
            s2 = s0;
            s3 = s0;
        }
        int a1 = a0 + aRow;
        int a2 = a1 + aRow;
        int a3 = a2 + aRow;
        for (int kk = k0; kk < k1; kk++) {
            int ak = kk * aCol;
            FloatVector bv = FloatVector.fromArray(S, b, bFirst + kk * bRow);
            s0 = bv.fma(FloatVector.broadcast(S, a[a0 + ak]), s0);
            s1 = bv.fma(FloatVector.broadcast(S, a[a1 + ak]), s1);
            s2 = bv.fma(FloatVector.broadcast(S, a[a2 + ak]), s2);
            s3 = bv.fma(FloatVector.broadcast(S, a[a3 + ak]), s3);
        }
        s0.intoArray(c, c0);
        s1.intoArray(c, c1);
        s2.intoArray(c, c2);
        s3.intoArray(c, c3);
    }
}
