package dev.mod.cpu;

import dev.mod.model.DType;
import dev.mod.model.Tensor;
import dev.mod.reference.ReferenceKernels;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Kernels of the cpu backend one by one against the reference kernels, on shapes that hit every edge. */
class CpuKernelsTest {
    private static final CpuKernels CPU = new CpuKernels(2);
    private final ReferenceKernels reference = new ReferenceKernels();

    @AfterAll
    static void closePool() {
        CPU.close();
    }

    private static float[] random(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) r.nextGaussian();
        }
        return a;
    }

    @ParameterizedTest
    @CsvSource({"1, 1, 1", "3, 5, 7", "4, 16, 48", "65, 300, 97", "130, 513, 200", "7, 1024, 49"})
    void gemmMatchesReference(int rows, int in, int out) {
        float[] x = random(rows * in, 1);
        Tensor w = Tensor.of("w", random(out * in, 2), out, in);
        float[] expected = new float[rows * out];
        float[] actual = new float[rows * out];
        reference.matmul(expected, x, w, rows, in, out);
        CPU.matmul(actual, x, w, rows, in, out);
        assertTrue(CpuParityTest.relativeError(actual, expected) < 1e-5, "" + CpuParityTest.relativeError(actual, expected));
    }

    /**
     * 16-bit weights kept in 16 bits: the GEMM widens them in registers and must give, bit for bit, what it gives on
     * float panels of the same rounded values (same products, same order), on every edge of rows, panels and
     * k-blocks; and the reference on the rounded weights within float tolerance.
     */
    @ParameterizedTest
    @CsvSource({"1, 1, 1", "3, 5, 7", "4, 16, 48", "65, 300, 97", "130, 513, 200", "1, 1376, 512", "7, 1024, 49"})
    void halfPrecisionWeightsStayInSixteenBits(int rows, int in, int out) {
        float[] x = random(rows * in, 1);
        for (DType type : new DType[] {DType.BF16, DType.F16}) {
            Tensor w = Tensor.of("w", random(out * in, 2), out, in).as(type);
            assertEquals(type, w.dtype());
            float[] widened = new float[rows * out];
            float[] onFloats = new float[rows * out];
            float[] expected = new float[rows * out];
            CPU.matmul(widened, x, w, rows, in, out);
            try (WorkerPool pool = new WorkerPool(2)) {
                new Gemm().multiply(pool, onFloats, x, PackedMatrix.pack(w, Gemm.NR), rows);
            }
            reference.matmul(expected, x, w, rows, in, out);
            assertArrayEquals(onFloats, widened, type + ": the same floats in the same order");
            assertTrue(CpuParityTest.relativeError(widened, expected) < 1e-5, type + " " + CpuParityTest.relativeError(widened, expected));
        }
    }

    /** Every 16-bit value, in the low and in the high half of a pair of rows, widens as Java widens it. */
    @Test
    void everySixteenBitValueWidensAsJavaWidensIt() {
        int width = jdk.incubator.vector.IntVector.SPECIES_PREFERRED.length();
        int[] pairs = new int[1 << 16];
        for (int i = 0; i < pairs.length; i++) {
            // value i in the low half (row 2p), value i ^ 0xA5A5 in the high half (row 2p + 1)
            pairs[i] = i | (i ^ 0xA5A5) << 16;
        }
        int in = 2 * pairs.length / width;
        for (DType type : new DType[] {DType.BF16, DType.F16}) {
            float[] widened = new float[in * width];
            new PackedHalfMatrix(pairs, type, width, in, width).widen(0, 0, in, widened);
            for (int i = 0; i < pairs.length; i++) {
                for (int half = 0; half < 2; half++) {
                    short bits = (short) (half == 0 ? i : i ^ 0xA5A5);
                    float actual = widened[(2 * (i / width) + half) * width + i % width];
                    String where = type + " " + Integer.toHexString(bits & 0xFFFF) + (half == 0 ? " low" : " high");
                    float expected = type == DType.BF16 ? Float.intBitsToFloat(bits << 16) : Float.float16ToFloat(bits);
                    if (Float.isNaN(expected)) {
                        // NaN payloads are the CPU's business (x86 quiets them when converting); a NaN stays a NaN
                        assertTrue(Float.isNaN(actual), where);
                    } else {
                        assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(actual), where);
                    }
                }
            }
        }
    }

    @Test
    void roundingToSixteenBitsIsToNearestEven() {
        float[] values = {1f, Float.intBitsToFloat(0x3F808000), Float.intBitsToFloat(0x3F818000), Float.intBitsToFloat(0x3F808001),
                -2.5f, 65504f, 1e6f, Float.NaN, Float.NEGATIVE_INFINITY};
        Tensor t = Tensor.of("t", values, values.length);
        Tensor b = t.as(DType.BF16);
        assertEquals((short) 0x3F80, b.getBits(0));
        assertEquals((short) 0x3F80, b.getBits(1), "a tie goes to the even neighbour");
        assertEquals((short) 0x3F82, b.getBits(2), "a tie goes to the even neighbour, up");
        assertEquals((short) 0x3F81, b.getBits(3), "above the tie rounds up");
        assertEquals(-2.5f, b.get(4));
        assertTrue(Float.isNaN(b.get(7)));
        assertEquals(Float.NEGATIVE_INFINITY, b.get(8));
        Tensor h = t.as(DType.F16);
        assertEquals(65504f, h.get(5));
        assertEquals(Float.POSITIVE_INFINITY, h.get(6), "F16 saturates to infinity past its range");
        for (int i = 0; i < values.length; i++) {
            // the rounded value is the closest one of the type: no neighbour of it is nearer
            float r = b.get(i);
            if (Float.isFinite(values[i]) && Float.isFinite(r)) {
                for (int step : new int[] {-1, 1}) {
                    float neighbour = Float.intBitsToFloat((b.getBits(i) + step) << 16);
                    assertTrue(Math.abs(neighbour - values[i]) >= Math.abs(r - values[i]), "value " + values[i]);
                }
            }
        }
        assertEquals(t, t.as(DType.F32));
    }

    /**
     * The GEMM with its left operand packed from a transpose (training's weight gradients): A = m^T for m [depth,
     * rows], added to what out held; rows not a multiple of the micro-panels, depth past one k-block.
     */
    @ParameterizedTest
    @CsvSource({"1, 1, 1", "6, 5, 7", "4, 16, 48", "67, 300, 97", "130, 513, 200"})
    void gemmWithPackedTransposedLeftAccumulates(int rows, int depth, int out) {
        float[] m = random(depth * rows, 3);
        float[] w = random(out * depth, 4);
        float[] actual = random(rows * out, 5);
        float[] expected = actual.clone();
        for (int r = 0; r < rows; r++) {
            for (int o = 0; o < out; o++) {
                double sum = 0;
                for (int i = 0; i < depth; i++) {
                    sum += (double) m[i * rows + r] * w[o * depth + i];
                }
                expected[r * out + o] += (float) sum;
            }
        }
        PackedMatrix left = PackedMatrix.allocate(rows, depth, Gemm.MR);
        left.fillTransposed(m);
        try (WorkerPool pool = new WorkerPool(2)) {
            new Gemm().multiply(pool, actual, left, PackedMatrix.pack(w, out, depth, Gemm.NR), true);
        }
        assertTrue(CpuParityTest.relativeError(actual, expected) < 1e-5, "" + CpuParityTest.relativeError(actual, expected));
    }

    @ParameterizedTest
    // sequences up to 300 rows cross the kernel's blocks of query rows and tiles of keys at and off their edges
    @CsvSource({"1, 1, 1, 4", "2, 9, 4, 2", "1, 33, 2, 64", "2, 20, 3, 40", "1, 5, 1, 6", "1, 300, 2, 24", "2, 129, 1, 80",
            "1, 256, 1, 64", "1, 161, 3, 16"})
    void attentionMatchesReference(int batch, int n, int kvHeads, int dh) {
        int heads = kvHeads * 2;
        float[] q = random(batch * n * heads * dh, 3);
        float[] k = random(batch * n * kvHeads * dh, 4);
        float[] v = random(batch * n * kvHeads * dh, 5);
        int[] pos = new int[batch * n];
        Arrays.setAll(pos, i -> 3 * (i % n) + 1); // ascending with gaps, as a routed layer's
        float[] expected = new float[q.length];
        float[] actual = new float[q.length];
        reference.attention(expected, q, k, v, pos, batch, n, heads, kvHeads, dh);
        CPU.attention(actual, q, k, v, pos, batch, n, heads, kvHeads, dh);
        assertTrue(CpuParityTest.relativeError(actual, expected) < 1e-5, "" + CpuParityTest.relativeError(actual, expected));
    }

    /**
     * Attention against a KV cache, F32 and BF16 (keys paired by dim, values by row, as KvCache keeps them), against the
     * reference (which widens a BF16 cache to floats): rows before, at and off the kernel's vectors of keys, an odd and
     * an even number of visible rows, dh with and without a tail, GQA. Everything past the visible rows (free columns
     * of the keys, the high half of an odd last pair of values, rows past the end) holds NaN, which must reach nothing.
     */
    @ParameterizedTest
    @CsvSource({"1, 0, 1, 4", "1, 1000, 2, 64", "3, 97, 2, 24", "2, 40, 1, 80", "1, 16, 4, 16", "5, 0, 1, 64", "4, 63, 2, 64"})
    void cacheAttentionMatchesReferenceOnF32AndBf16Caches(int n, int start, int kvHeads, int dh) {
        int heads = 2 * kvHeads;
        int kvDim = kvHeads * dh;
        int rows = start + n;
        int stride = rows + 37;
        float[] q = random((n + 2) * heads * dh, 21);
        float[] keys = random(rows * kvDim, 22);   // [rows, kvDim], rounded to BF16 below so both caches hold the same
        float[] vals = random(rows * kvDim, 23);
        for (int i = 0; i < keys.length; i++) {
            keys[i] = Float.intBitsToFloat(Tensor.bf16(keys[i]) << 16);
            vals[i] = Float.intBitsToFloat(Tensor.bf16(vals[i]) << 16);
        }
        float[] kT = new float[kvDim * stride];
        float[] v = new float[kvDim * stride];  // [Hkv, stride, dh]
        int[] kPairs = new int[kvDim / 2 * stride];
        int pairRows = (stride + 1) / 2;
        int[] vPairs = new int[kvDim * pairRows];  // [Hkv, (stride + 1) / 2, dh]
        Arrays.fill(kT, Float.NaN);
        Arrays.fill(v, Float.NaN);
        Arrays.fill(kPairs, 0x7FC07FC0);
        Arrays.fill(vPairs, 0x7FC07FC0);
        for (int j = 0; j < rows; j++) {
            for (int c = 0; c < kvDim; c++) {
                int bits = Float.floatToRawIntBits(keys[j * kvDim + c]) >>> 16;
                kT[c * stride + j] = keys[j * kvDim + c];
                kPairs[c / 2 * stride + j] = c % 2 == 0 ? (kPairs[c / 2 * stride + j] & 0xFFFF0000) | bits
                        : (kPairs[c / 2 * stride + j] & 0xFFFF) | bits << 16;
                int vBits = Float.floatToRawIntBits(vals[j * kvDim + c]) >>> 16;
                v[(c / dh * stride + j) * dh + c % dh] = vals[j * kvDim + c];
                int at = (c / dh * pairRows + j / 2) * dh + c % dh;
                vPairs[at] = j % 2 == 0 ? (vPairs[at] & 0xFFFF0000) | vBits : (vPairs[at] & 0xFFFF) | vBits << 16;
            }
        }
        int qRows = (n + 2) * heads * dh;
        float[] expected = new float[qRows];
        float[] f32 = new float[qRows];
        float[] bf16 = new float[qRows];
        float[] bf16Reference = new float[qRows];
        reference.cachedAttention(expected, q, 1, n, kT, stride, v, start, heads, kvHeads, dh);
        reference.cachedAttentionBf16(bf16Reference, q, 1, n, kPairs, stride, vPairs, start, heads, kvHeads, dh);
        CPU.cachedAttention(f32, q, 1, n, kT, stride, v, start, heads, kvHeads, dh);
        CPU.cachedAttentionBf16(bf16, q, 1, n, kPairs, stride, vPairs, start, heads, kvHeads, dh);
        int from = heads * dh;
        int to = (n + 1) * heads * dh;
        float[] want = Arrays.copyOfRange(expected, from, to);
        for (float x : want) {
            assertTrue(Float.isFinite(x), "the reference reads past the visible rows");
        }
        assertArrayEquals(want, Arrays.copyOfRange(bf16Reference, from, to), "the reference's widening of the pairs");
        assertTrue(CpuParityTest.relativeError(Arrays.copyOfRange(f32, from, to), want) < 1e-5, "F32 cache");
        assertTrue(CpuParityTest.relativeError(Arrays.copyOfRange(bf16, from, to), want) < 1e-5, "BF16 cache");
    }

    /**
     * The attention kernels' tile product against a plain triple loop: row counts that mix 6- and 4-row tiles, column
     * counts with and without a tail of single vectors, depths across blocks, A read straight and transposed, C
     * overwritten and accumulated into, all at offsets inside larger arrays.
     */
    @ParameterizedTest
    @CsvSource({"4, 1, 1", "8, 4, 64", "12, 5, 70", "16, 4, 130", "20, 1, 3", "28, 8, 65", "64, 4, 128"})
    void tileProductMatchesALoop(int m, int vectors, int k) {
        int n = vectors * jdk.incubator.vector.FloatVector.SPECIES_PREFERRED.length();
        float[] b = random(7 + k * (n + 3), 11);
        for (boolean transposed : new boolean[] {false, true}) {
            for (boolean accumulate : new boolean[] {false, true}) {
                float[] a = random(5 + (m + 2) * (k + 2), 12);
                float[] c = random(9 + m * (n + 2), 13);
                float[] expected = c.clone();
                int aRow = transposed ? 1 : k + 2;
                int aCol = transposed ? m + 2 : 1;
                for (int i = 0; i < m; i++) {
                    for (int j = 0; j < n; j++) {
                        float sum = accumulate ? c[9 + i * (n + 2) + j] : 0;
                        for (int kk = 0; kk < k; kk++) {
                            sum = Math.fma(a[5 + i * aRow + kk * aCol], b[7 + kk * (n + 3) + j], sum);
                        }
                        expected[9 + i * (n + 2) + j] = sum;
                    }
                }
                TileProduct.multiply(c, 9, n + 2, a, 5, aRow, aCol, b, 7, n + 3, m, n, k, accumulate);
                assertTrue(CpuParityTest.relativeError(c, expected) < 1e-5,
                        "transposed " + transposed + ", accumulate " + accumulate + ": " + CpuParityTest.relativeError(c, expected));
            }
        }
    }

    /** The log-sum-exp that training keeps for the backward pass, against a double-precision sum over the visible keys. */
    @ParameterizedTest
    @CsvSource({"1, 300, 2, 24", "2, 70, 1, 64"})
    void attentionKeepsEachRowsLogSumExp(int batch, int n, int kvHeads, int dh) {
        int heads = kvHeads * 2;
        float[] q = random(batch * n * heads * dh, 6);
        float[] k = random(batch * n * kvHeads * dh, 7);
        float[] v = random(batch * n * kvHeads * dh, 8);
        float[] out = new float[q.length];
        float[] lse = new float[batch * heads * n];
        try (WorkerPool pool = new WorkerPool(2)) {
            new CausalAttention(2).attend(pool, out, lse, q, k, v, batch, n, heads, kvHeads, dh);
        }
        for (int b = 0; b < batch; b++) {
            for (int h = 0; h < heads; h++) {
                int g = h / (heads / kvHeads);
                for (int i = 0; i < n; i++) {
                    double sum = 0;
                    for (int j = 0; j <= i; j++) {
                        double dot = 0;
                        for (int e = 0; e < dh; e++) {
                            dot += (double) q[((b * n + i) * heads + h) * dh + e] * k[((b * n + j) * kvHeads + g) * dh + e];
                        }
                        sum += Math.exp(dot / Math.sqrt(dh));
                    }
                    assertEquals(Math.log(sum), lse[(b * heads + h) * n + i], 1e-4, "b " + b + " h " + h + " row " + i);
                }
            }
        }
    }

    /** Products of one input run stacked give each product bit for bit, whatever the panels the stack crosses. */
    @Test
    void stackedProductsGiveEachProductAsItsOwn() {
        SplittableRandom random = new SplittableRandom(11);
        int in = 70;
        int[] outDims = {50, 19, 19};
        for (DType type : new DType[] {DType.F32, DType.BF16}) {
            for (int rows : new int[] {1, 3, 9}) {
                Tensor[] ws = new Tensor[outDims.length];
                float[][] stacked = new float[outDims.length][];
                float[][] alone = new float[outDims.length][];
                for (int i = 0; i < ws.length; i++) {
                    ws[i] = Tensor.of("w" + i, gaussian(random, outDims[i] * in), outDims[i], in).as(type);
                    stacked[i] = new float[rows * outDims[i]];
                    alone[i] = new float[rows * outDims[i]];
                }
                float[] x = gaussian(random, rows * in);
                try (CpuKernels fresh = new CpuKernels(2)) {
                    fresh.matmuls(stacked, x, ws, rows, in, outDims);
                    for (int i = 0; i < ws.length; i++) {
                        fresh.matmul(alone[i], x, ws[i], rows, in, outDims[i]);
                        assertArrayEquals(alone[i], stacked[i], type + ", " + rows + " rows, product " + i);
                    }
                }
            }
        }
    }

    /**
     * Independent products run as one group (a mixture's experts: own inputs, rows and weights, some with no rows) give
     * each product bit for bit as it comes alone, for float and 16-bit weights, and leave an empty group's output alone.
     */
    @Test
    void groupedProductsGiveEachProductAsItsOwn() {
        SplittableRandom random = new SplittableRandom(12);
        int in = 90;
        int[] outDims = {70, 33, 70, 5};
        int[] rows = {130, 0, 1, 7};
        for (DType type : new DType[] {DType.F32, DType.BF16, DType.F16}) {
            Tensor[] ws = new Tensor[outDims.length];
            float[][] xs = new float[outDims.length][];
            float[][] grouped = new float[outDims.length][];
            float[][] alone = new float[outDims.length][];
            for (int i = 0; i < ws.length; i++) {
                ws[i] = Tensor.of("w" + i, gaussian(random, outDims[i] * in), outDims[i], in).as(type);
                xs[i] = gaussian(random, Math.max(1, rows[i]) * in);
                grouped[i] = new float[Math.max(1, rows[i]) * outDims[i]];
                Arrays.fill(grouped[i], 7f);
                alone[i] = grouped[i].clone();
            }
            try (CpuKernels fresh = new CpuKernels(2)) {
                fresh.matmulGroups(grouped, xs, ws, rows, ws.length);
                for (int i = 0; i < ws.length; i++) {
                    fresh.matmul(alone[i], xs[i], ws[i], rows[i], in, outDims[i]);
                    assertArrayEquals(alone[i], grouped[i], type + ", product " + i + " of " + rows[i] + " rows");
                }
            }
            assertEquals(7f, grouped[1][0], "a product with no rows writes nothing");
        }
    }

    private static float[] gaussian(SplittableRandom random, int n) {
        float[] a = new float[n];
        for (int j = 0; j < n; j++) {
            a[j] = (float) random.nextGaussian();
        }
        return a;
    }

    @Test
    void topKBreaksTiesByPositionAndOrdersSpecialValuesLikeFloatCompare() {
        float[] r = {1, 5, 0, 5, 5, 2, Float.NaN, -0.0f, 0.0f, Float.NEGATIVE_INFINITY, Float.POSITIVE_INFINITY, 5};
        for (int k = 1; k <= r.length; k++) {
            int[] expected = new int[k];
            int[] actual = new int[k];
            reference.topK(expected, r, 1, r.length, k);
            CPU.topK(actual, r, 1, r.length, k);
            assertArrayEquals(expected, actual, "k = " + k);
        }
    }

    @Test
    void topKOnManyRandomSequencesWithTies() {
        SplittableRandom random = new SplittableRandom(9);
        for (int trial = 0; trial < 200; trial++) {
            int batch = 1 + random.nextInt(3);
            int seqLen = 1 + random.nextInt(300);
            int k = 1 + random.nextInt(seqLen);
            float[] r = new float[batch * seqLen];
            for (int i = 0; i < r.length; i++) {
                r[i] = random.nextInt(8); // many ties
            }
            int[] expected = new int[batch * k];
            int[] actual = new int[batch * k];
            reference.topK(expected, r, batch, seqLen, k);
            CPU.topK(actual, r, batch, seqLen, k);
            assertArrayEquals(expected, actual, "trial " + trial);
        }
    }

    @Test
    void elementwiseKernelsMatchReference() {
        int rows = 37;
        int d = 40;
        float[] x = random(rows * d, 6);
        Tensor w = Tensor.of("w", random(d, 7), d);
        float[] expected = new float[rows * d];
        float[] actual = new float[rows * d];
        reference.rmsnorm(expected, x, w, rows, d, 1e-5);
        CPU.rmsnorm(actual, x, w, rows, d, 1e-5);
        assertTrue(CpuParityTest.relativeError(actual, expected) < 1e-6);

        float[] up = random(rows * d, 8);
        reference.swiglu(expected, x, up, rows * d);
        CPU.swiglu(actual, x, up, rows * d);
        assertTrue(CpuParityTest.relativeError(actual, expected) < 1e-6);

        int[] pos = new int[rows];
        Arrays.setAll(pos, i -> 5 * i);
        float[] a = x.clone();
        float[] b = x.clone();
        reference.rope(a, pos, rows, 4, 10, 10000);
        CPU.rope(b, pos, rows, 4, 10, 10000);
        assertTrue(CpuParityTest.relativeError(b, a) < 1e-6);

        float[] rExpected = new float[rows];
        float[] rActual = new float[rows];
        Tensor router = Tensor.of("r", random(d, 10), 1, d);
        reference.routerLogits(rExpected, x, router, rows, d);
        CPU.routerLogits(rActual, x, router, rows, d);
        assertTrue(CpuParityTest.relativeError(rActual, rExpected) < 1e-6);
    }
}
