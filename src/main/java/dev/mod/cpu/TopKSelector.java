package dev.mod.cpu;

/**
 * Expert-choice top-k per sequence in O(T) expected time: quickselect on keys that order tokens by
 * router logit, descending, then by position, ascending (the tie rule), followed by one pass over the
 * positions to emit the selection in ascending order. Scratch is per worker and kept between calls.
 */
public final class TopKSelector implements WorkerPool.Task {
    private final long[][] keys;
    private final boolean[][] marks;

    private int[] sel;
    private float[] r;
    private int seqLen;
    private int k;

    public TopKSelector(int workers) {
        keys = new long[workers][];
        marks = new boolean[workers][];
    }

    // sel[B, k] = positions of the k largest r[b, :] (ties: lower position first), ascending
    public void select(WorkerPool pool, int[] sel, float[] r, int batch, int seqLen, int k) {
        this.sel = sel;
        this.r = r;
        this.seqLen = seqLen;
        this.k = k;
        pool.run(this, batch);
        this.sel = null;
        this.r = null;
    }

    /**
     * A key whose signed order is (logit descending, position ascending). Float.floatToIntBits maps
     * every NaN to one positive NaN, which then ranks above +infinity, as Float.compare does.
     */
    static long key(float logit, int position) {
        int bits = Float.floatToIntBits(logit);
        int ascending = bits ^ ((bits >> 31) & 0x7fffffff);
        return ((long) ~ascending << 32) | position;
    }

    @Override
    public void run(int b, int worker) {
        if (keys[worker] == null || keys[worker].length < seqLen) {
            keys[worker] = new long[seqLen];
            marks[worker] = new boolean[seqLen];
        }
        long[] key = keys[worker];
        boolean[] mark = marks[worker];
        int offset = b * seqLen;
        for (int t = 0; t < seqLen; t++) {
            key[t] = key(r[offset + t], t);
            mark[t] = false;
        }
        selectSmallest(key, seqLen, k);
        for (int j = 0; j < k; j++) {
            mark[(int) key[j]] = true;
        }
        int out = b * k;
        for (int t = 0; t < seqLen; t++) {
            if (mark[t]) {
                sel[out++] = t;
            }
        }
    }

    /** Rearranges a[0..n) so that its k smallest values come first (Hoare quickselect, median-of-three pivot). */
    static void selectSmallest(long[] a, int n, int k) {
        int lo = 0;
        int hi = n - 1;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            long pivot = median(a[lo], a[mid], a[hi]);
            int i = lo;
            int j = hi;
            while (i <= j) {
                while (a[i] < pivot) {
                    i++;
                }
                while (a[j] > pivot) {
                    j--;
                }
                if (i <= j) {
                    long tmp = a[i];
                    a[i] = a[j];
                    a[j] = tmp;
                    i++;
                    j--;
                }
            }
            // now a[lo..j] <= pivot <= a[i..hi]; keep the side that holds index k-1
            if (k - 1 <= j) {
                hi = j;
            } else if (k - 1 >= i) {
                lo = i;
            } else {
                return;
            }
        }
    }

    private static long median(long a, long b, long c) {
        return Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
    }
}
