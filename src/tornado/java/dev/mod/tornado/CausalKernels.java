package dev.mod.tornado;

import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.math.TornadoMath;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

/**
 * The kernels only the causal plan (generation) has: taking a chunk in, each layer's causal routing decision
 * with its KV-cache bookkeeping, and RoPE fused with the KV-cache write. Everything a chunk and the caches
 * need on the host's side of a step lives in one int buffer, the plan's state, laid out by {@link CausalLayout}.
 * This class must be compiled with debug information (see TornadoKernels).
 */
public final class CausalKernels {
    private CausalKernels() {
    }

    /** Rules of routeRows: every row (a dense layer), router logit above a threshold, the predictor's logit above 0. */
    public static final int ALL = 0;
    public static final int THRESHOLD = 1;
    public static final int PREDICTOR = 2;

    /** Work-items of the groups that the plan launches over rows (embedChunk, ropeStore). */
    public static final int GROUP = 64;

    // The first task the plan ever runs: names the buffers that pass from the last graph of a run to the first graph
    // of the next (the state and the residual stream), so that they have one home on the device. Single item.
    // Seen with TornadoVM 5.2.1: a buffer a graph's tasks only write is neither copied in on the first run nor taken
    // over from the graph before, so every graph that holds the state or x must read it; hence the tests below.
    public static void begin(IntArray state, FloatArray x) {
        if (state.get(CausalLayout.ROWS) != 0) {
            state.set(CausalLayout.ROWS, 0);
        }
        if (x.get(0) != 0f) {
            x.set(0, 0f);
        }
    }

    // A chunk in: in = [n, keep[S], tok[R'], seq[R'], pos[R']] (R' the rows this input holds) copied into the state,
    // and x[n, d] = emb[tok[i], :]. Grid: (at least max(n * d, S) items, rounded to GROUP).
    public static void embedChunk(KernelContext context, IntArray in, IntArray state, FloatArray emb, FloatArray x, int d,
                                  int sequences, int inRows, int rows) {
        int idx = context.globalIdx;
        int n = in.get(0);
        if (idx < n * d) {
            int r = idx / d;
            x.set(idx, emb.get(in.get(1 + sequences + r) * d + idx % d));
        }
        if (idx < n) {
            state.set(CausalLayout.tokens(sequences) + idx, in.get(1 + sequences + idx));
            state.set(CausalLayout.sequences(sequences, rows) + idx, in.get(1 + sequences + inRows + idx));
            state.set(CausalLayout.positions(sequences, rows) + idx, in.get(1 + sequences + 2 * inRows + idx));
        }
        if (idx < sequences) {
            state.set(CausalLayout.KEEP + idx, in.get(1 + idx));
        }
        if (idx == 0 && state.get(CausalLayout.ROWS) != n) {
            state.set(CausalLayout.ROWS, n);
        }
    }

    // One layer's rows of the chunk: which it processes and where they go in its cache. First every sequence's cache
    // is cut back to the positions below keep[s] (a host-side rollback since the last chunk); then row i is picked when
    // the rule says so (ALL; THRESHOLD: r[i] > threshold; PREDICTOR: w2[P] . silu(hidden[i, P]) > 0), its position
    // appended to its sequence's cache positions, and its chunk row, position and cache slot (s * context + row)
    // written to map, pickedPos and pickedSlot at the next index; live[0] = the rows picked. A routed layer also
    // records each row's decision and router logit (flags in the state, logits in routing[routedIndex, R]) and adds to
    // its counts of routed tokens and decisions. One item: a chunk's rows are few at decode, and the appends are in order.
    public static void routeRows(IntArray state, FloatArray r, FloatArray hidden, FloatArray w2, FloatArray routing, IntArray live,
                                 IntArray map, IntArray pickedPos, IntArray pickedSlot, int sequences, int rows, int context,
                                 int layers, int layer, int routedIndex, int rule, float threshold, int predictorDim) {
        int n = state.get(CausalLayout.ROWS);
        int lengths = CausalLayout.lengths(sequences, rows) + layer * sequences;
        int positions = CausalLayout.cached(sequences, rows, layers) + layer * sequences * context;
        for (int s = 0; s < sequences; s++) {
            int length = state.get(lengths + s);
            int keep = state.get(CausalLayout.KEEP + s);
            while (length > 0 && state.get(positions + s * context + length - 1) >= keep) {
                length--;
            }
            state.set(lengths + s, length);
        }
        int picked = 0;
        for (int i = 0; i < n; i++) {
            int take = 1;
            if (rule == THRESHOLD) {
                take = r.get(i) > threshold ? 1 : 0;
            } else if (rule == PREDICTOR) {
                float sum = 0f;
                for (int j = 0; j < predictorDim; j++) {
                    float z = hidden.get(i * predictorDim + j);
                    sum += w2.get(j) * (z / (1f + TornadoMath.exp(-z)));
                }
                take = sum > 0f ? 1 : 0;
            }
            if (rule != ALL) {
                state.set(CausalLayout.flags(sequences, rows, layers, context) + layer * rows + i, take);
                routing.set(routedIndex * rows + i, r.get(i));
            }
            if (take == 1) {
                int s = state.get(CausalLayout.sequences(sequences, rows) + i);
                int pos = state.get(CausalLayout.positions(sequences, rows) + i);
                int length = state.get(lengths + s);
                state.set(positions + s * context + length, pos);
                state.set(lengths + s, length + 1);
                map.set(picked, i);
                pickedPos.set(picked, pos);
                pickedSlot.set(picked, s * context + length);
                picked++;
            }
        }
        live.set(0, picked);
        if (rule != ALL) {
            int counts = CausalLayout.counts(sequences, rows, layers, context) + 2 * layer;
            state.set(counts, state.get(counts) + picked);
            state.set(counts + 1, state.get(counts + 1) + n);
        }
    }

    // qkv[rows, (H + 2 Hkv) * dh] of the picked rows: q and k rotated by RoPE at the row's position (pair (2j, 2j+1)
    // by the tabulated angle; cos/sin[context, dh/2]), q in place, k and v into the layer's cache at the row's slot:
    // keys[S, Hkv * dh, context] (transposed: a query's scores read along a row), values[S, context, Hkv * dh].
    // One item per (row, head of q, k or v, pair); rows >= live[0] do nothing. Grid: (rows * (H + 2 Hkv) * dh/2, rounded to GROUP).
    public static void ropeStore(KernelContext context, FloatArray qkv, FloatArray keys, FloatArray values, IntArray pickedPos,
                                 IntArray pickedSlot, IntArray live, FloatArray cos, FloatArray sin, int nHeads, int nKvHeads, int dh,
                                 int cacheRows) {
        int half = dh / 2;
        int heads = nHeads + 2 * nKvHeads;
        int idx = context.globalIdx;
        int row = idx / (heads * half);
        if (row < live.get(0)) {
            int h = (idx / half) % heads;
            int j = idx % half;
            int stride = heads * dh;
            int at = row * stride + h * dh + 2 * j;
            int kvDim = nKvHeads * dh;
            int slot = pickedSlot.get(row);
            int s = slot / cacheRows;
            int c = slot % cacheRows;
            float x0 = qkv.get(at);
            float x1 = qkv.get(at + 1);
            if (h < nHeads + nKvHeads) {
                int pos = pickedPos.get(row);
                float cs = cos.get(pos * half + j);
                float sn = sin.get(pos * half + j);
                float y0 = x0 * cs - x1 * sn;
                float y1 = x0 * sn + x1 * cs;
                if (h < nHeads) {
                    qkv.set(at, y0);
                    qkv.set(at + 1, y1);
                } else {
                    int col = (h - nHeads) * dh + 2 * j;
                    keys.set((s * kvDim + col) * cacheRows + c, y0);
                    keys.set((s * kvDim + col + 1) * cacheRows + c, y1);
                }
            } else {
                int col = (h - nHeads - nKvHeads) * dh + 2 * j;
                values.set((s * cacheRows + c) * kvDim + col, x0);
                values.set((s * cacheRows + c) * kvDim + col + 1, x1);
            }
        }
    }
}
