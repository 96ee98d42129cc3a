package dev.mod.plan;

import dev.mod.TestModels;
import dev.mod.model.ModelConfig;
import dev.mod.model.RouterWeighting;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KvCacheTest {
    @Test
    void aRoutedLayerGrowsAndKeepsItsRowsTransposedKeysIntact() {
        ModelConfig c = TestModels.config(2, 2, 0.125, List.of(1), RouterWeighting.RAW);
        KvCache cache = new KvCache(c, 2, c.maxSeqLen());
        int kvDim = c.kvDim();
        assertEquals(16, cache.capacity(1, 1), "a routed layer starts at twice its capacity of tokens");
        assertEquals(64, cache.capacity(0, 1), "a dense layer holds the whole context");
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
                assertEquals(-(row * 100 + e), cache.values(1, 1)[row * kvDim + e]);
            }
        }
        cache.truncate(1, 30);
        assertEquals(10, cache.length(1, 1), "positions 0, 3, ..., 27 stay");
        assertEquals(10L * 2 * kvDim * Float.BYTES, cache.bytes());
    }
}
