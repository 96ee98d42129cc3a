package dev.mod.plan;

import dev.mod.ModException;
import dev.mod.TestModels;
import dev.mod.model.DType;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.RoutingCalibration;
import dev.mod.reference.ReferenceKernels;
import dev.mod.model.RouterWeighting;
import dev.mod.model.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KvCacheTest {
    @Test
    void aRoutedLayerGrowsAndKeepsItsRowsTransposedKeysIntact() {
        ModelConfig c = TestModels.config(2, 2, 0.125, List.of(1), RouterWeighting.RAW);
        KvCache cache = new KvCache(c, 2, c.maxSeqLen());
        int kvDim = c.kvDim();
        assertEquals(16, cache.capacity(1, 1), "a routed layer starts at twice its capacity of tokens");
        assertEquals(64, cache.capacity(0, 1), "a dense layer starts at 256 rows, at most the context");
        float[] k = new float[kvDim];
        float[] v = new float[kvDim];
        for (int row = 0; row < 40; row++) {
            for (int e = 0; e < kvDim; e++) {
                k[e] = row * 100 + e;
                v[e] = -(row * 100 + e);
            }
            cache.append(1, 1, k, v, 0, 3 * row);
        }
        assertTrue(cache.capacity(1, 1) >= 40);
        assertEquals(40, cache.length(1, 1));
        assertEquals(0, cache.length(1, 0));
        for (int row = 0; row < 40; row++) {
            assertEquals(3 * row, cache.position(1, 1, row));
            for (int e = 0; e < kvDim; e++) {
                assertEquals(row * 100 + e, cache.keysT(1, 1)[e * cache.capacity(1, 1) + row]);
                int dh = c.headDim();
                assertEquals(-(row * 100 + e), cache.values(1, 1)[(e / dh * cache.capacity(1, 1) + row) * dh + e % dh]);
            }
        }
        cache.truncate(1, 30);
        assertEquals(10, cache.length(1, 1), "positions 0, 3, ..., 27 stay");
        assertEquals(10L * 2 * kvDim * Float.BYTES, cache.bytes());
    }

    /** A BF16 cache keeps each value rounded, keys paired by dim and values by row, through growth and truncation. */
    @Test
    void aBf16CacheKeepsRoundedPairsThroughGrowthAndTruncation() {
        ModelConfig c = TestModels.config(2, 2, 0.125, List.of(1), RouterWeighting.RAW);
        KvCache cache = new KvCache(c, 2, 45, DType.BF16);
        int kvDim = c.kvDim();
        float[] k = new float[kvDim];
        float[] v = new float[kvDim];
        for (int row = 0; row < 45; row++) {
            for (int e = 0; e < kvDim; e++) {
                k[e] = row + e / 1000f;
                v[e] = -(row + e / 7f);
            }
            cache.append(1, 1, k, v, 0, 2 * row);
            if (row == 29) {
                cache.truncate(1, 2 * 25);  // rows 25 .. 29 go; the next appends overwrite their halves
            }
        }
        assertEquals(40, cache.length(1, 1));
        assertEquals(45, cache.capacity(1, 1), "doubled from 16, then at most the context");
        int capacity = cache.capacity(1, 1);
        for (int j = 0; j < 40; j++) {
            int row = j < 25 ? j : j + 5;
            for (int e = 0; e < kvDim; e++) {
                int keyPair = cache.keyPairsT(1, 1)[e / 2 * capacity + j];
                int dh = c.headDim();
                int valuePair = cache.valuePairs(1, 1)[(e / dh * ((capacity + 1) / 2) + j / 2) * dh + e % dh];
                assertEquals(Tensor.bf16(row + e / 1000f), (short) (e % 2 == 0 ? keyPair : keyPair >>> 16), "key " + j + ", " + e);
                assertEquals(Tensor.bf16(-(row + e / 7f)), (short) (j % 2 == 0 ? valuePair : valuePair >>> 16), "value " + j + ", " + e);
            }
        }
        assertEquals(40L * 2 * kvDim * 2, cache.bytes());
        assertEquals(40L * 2 * 2 * kvDim * 2, cache.denseBytes(40));
    }

    @Test
    void aHugeMaxSeqLenCostsNothingUntilTokensArrive() {
        ModelConfig c = new ModelConfig(50, 16, 4, 4, 2, 24, 1e-5, 10000, 1_000_000_000, 0.125, List.of(1, 3), RouterWeighting.RAW);
        Model m = ModelInit.random(c, 3);
        KvCache cache = new KvCache(c, 2, c.maxSeqLen());
        assertEquals(256, cache.capacity(0, 0));
        assertEquals(64, cache.capacity(1, 0), "twice the routed share of 256 tokens");
        CausalPlan plan = new CausalPlan(m, new ReferenceKernels(), RoutingRule.ROUTER, 1, 300);
        int[] text = TestModels.tokens(1, 300, 50, 4)[0];
        plan.prefill(0, text);
        assertEquals(300, plan.length(0));
        assertEquals(512, plan.cache().capacity(0, 0), "grown by doubling, not to max_seq_len");
        RoutingCalibration calibration = CausalPlan.calibrate(m, new ReferenceKernels(), TestModels.tokens(2, 20, 50, 5));
        assertEquals(40, calibration.tokens());
    }

    @Test
    void aCacheLargerThanTheHeapIsRefusedBeforeItIsAllocated() {
        ModelConfig c = new ModelConfig(50, 4096, 64, 4, 4, 24, 1e-5, 10000, 4096, 1, List.of(), RouterWeighting.RAW);
        ModException e = assertThrows(ModException.class, () -> new KvCache(c, 100_000, c.maxSeqLen()));
        assertTrue(e.getMessage().startsWith("the KV cache's first 1638400000 rows of keys and values need "), e.getMessage());
    }
}
