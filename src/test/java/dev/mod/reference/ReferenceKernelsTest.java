package dev.mod.reference;

import dev.mod.model.RouterWeighting;
import dev.mod.model.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** Each kernel on a case small enough to work out by hand. */
class ReferenceKernelsTest {
    private final ReferenceKernels k = new ReferenceKernels();

    @Test
    void rmsnormDividesByTheRootMeanSquare() {
        float[] x = {3, 4, 0, 0, 1, 1, 1, 1};
        float[] out = new float[8];
        k.rmsnorm(out, x, Tensor.of("w", new float[] {1, 2, 1, 1}, 4), 2, 4, 0);
        // row 0: mean square (9 + 16) / 4 = 6.25, rms 2.5; row 1: rms 1
        assertArrayEquals(new float[] {1.2f, 3.2f, 0, 0, 1, 2, 1, 1}, out, 1e-6f);
    }

    @Test
    void matmulUsesWeightsStoredOutByIn() {
        float[] x = {1, 2, 3};
        float[] out = new float[2];
        k.matmul(out, x, Tensor.of("w", new float[] {1, 0, 0, 1, 1, 1}, 2, 3), 1, 3, 2);
        assertArrayEquals(new float[] {1, 6}, out);
    }

    @Test
    void ropeRotatesInterleavedPairsByPositionTimesFrequency() {
        int dh = 4;
        double theta = 100;
        float[] x = {1, 0, 1, 0, 1, 0, 1, 0};
        k.rope(x, new int[] {0, 3}, 2, 1, dh, theta);
        // position 0: unchanged
        assertArrayEquals(new float[] {1, 0, 1, 0}, java.util.Arrays.copyOf(x, 4));
        // position 3: pair 0 at frequency 1 (angle 3), pair 1 at frequency 100^(-2/4) = 0.1 (angle 0.3)
        assertEquals(Math.cos(3), x[4], 1e-6);
        assertEquals(Math.sin(3), x[5], 1e-6);
        assertEquals(Math.cos(0.3), x[6], 1e-6);
        assertEquals(Math.sin(0.3), x[7], 1e-6);
    }

    @Test
    void attentionIsCausalByPositionAndAveragesBySoftmax() {
        // one head of dim 2, three tokens; q . k = 0 everywhere, so the weights are uniform over visible keys
        float[] q = {0, 0, 0, 0, 0, 0};
        float[] kk = {1, 0, 0, 1, 1, 1};
        float[] v = {3, 0, 0, 6, 9, 9};
        float[] out = new float[6];
        k.attention(out, q, kk, v, new int[] {2, 5, 9}, 1, 3, 1, 1, 2);
        assertArrayEquals(new float[] {3, 0, 1.5f, 3, 4, 5}, out, 1e-6f);
    }

    @Test
    void attentionWeightsFollowScaledDotProducts() {
        // one query at dim 2 seeing two keys: scores (q . k) / sqrt(2) = 0 and ln(3), so weights 1/4 and 3/4
        float s = (float) (Math.log(3) * Math.sqrt(2));
        float[] q = {0, 0, s, 0};
        float[] kk = {0, 0, 1, 0};
        float[] v = {4, 0, 0, 8};
        float[] out = new float[4];
        k.attention(out, q, kk, v, new int[] {0, 1}, 1, 2, 1, 1, 2);
        assertEquals(4 * 0.25, out[2], 1e-5);
        assertEquals(8 * 0.75, out[3], 1e-5);
    }

    @Test
    void attentionGroupsQueryHeadsOntoKvHeads() {
        // 4 query heads, 2 kv heads of dim 1, one token: head h reads kv head h / 2
        float[] q = {1, 1, 1, 1};
        float[] kk = {1, 1};
        float[] v = {10, 20};
        float[] out = new float[4];
        k.attention(out, q, kk, v, new int[] {0}, 1, 1, 4, 2, 1);
        assertArrayEquals(new float[] {10, 10, 20, 20}, out);
    }

    @Test
    void swigluIsSiluOfGateTimesUp() {
        float[] out = new float[2];
        k.swiglu(out, new float[] {0, 2}, new float[] {5, 3}, 2);
        assertEquals(0, out[0]);
        assertEquals(2 / (1 + Math.exp(-2)) * 3, out[1], 1e-6);
    }

    @Test
    void topKSelectsExactlyKWithTiesToTheLowerPosition() {
        int[] sel = new int[3];
        // positions 1, 3, 4 tie at 5 with the k-th value: a strict '>' would select fewer than k
        k.topK(sel, new float[] {1, 5, 0, 5, 5, 2}, 1, 6, 3);
        assertArrayEquals(new int[] {1, 3, 4}, sel);
        k.topK(sel, new float[] {7, 7, 7, 7, 7, 7}, 1, 6, 3);
        assertArrayEquals(new int[] {0, 1, 2}, sel);
    }

    @Test
    void topKIsPerSequenceAndSortedByPosition() {
        int[] sel = new int[4];
        float[] r = {0, 9, 1, 8, /* row 1 */ 5, 0, 6, 0};
        k.topK(sel, r, 2, 4, 2);
        assertArrayEquals(new int[] {1, 3, 0, 2}, sel);
    }

    @Test
    void gatherAndScatterTouchOnlyTheSelectedRowsOfTheirOwnSequence() {
        int d = 2;
        float[] x = {1, 1, 2, 2, 3, 3, /* row 1 */ 4, 4, 5, 5, 6, 6};
        int[] sel = {2, 0}; // sequence 0 picks position 2, sequence 1 picks position 0
        float[] xs = new float[4];
        k.gather(xs, x, sel, 2, 3, 1, d);
        assertArrayEquals(new float[] {3, 3, 4, 4}, xs);

        float[] r = {0, 0, 2, /* row 1 */ -1, 0, 0};
        float[] f = {10, 20, 30, 40};
        k.scatter(x, f, sel, r, RouterWeighting.RAW, 2, 3, 1, d);
        assertArrayEquals(new float[] {1, 1, 2, 2, 23, 43, /* row 1 */ -26, -36, 5, 5, 6, 6}, x);
    }

    @Test
    void sigmoidWeighting() {
        float[] x = {0, 0};
        k.scatter(x, new float[] {1, 2}, new int[] {0}, new float[] {0}, RouterWeighting.SIGMOID, 1, 1, 1, 2);
        assertArrayEquals(new float[] {0.5f, 1}, x);
    }
}
