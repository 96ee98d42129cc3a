package dev.mod.plan;

import dev.mod.ModException;
import dev.mod.TestModels;
import dev.mod.model.ModelConfig;
import dev.mod.model.RouterWeighting;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The shape every backend's plan follows: which layers are routed and how many rows each processes. */
class PlanShapeTest {
    @Test
    void routedLayersProcessKRowsPerSequenceAndDenseLayersAllOfThem() {
        ModelConfig config = TestModels.config(3, 2, 0.25, List.of(0, 2), RouterWeighting.RAW);
        PlanShape shape = PlanShape.of(config, 2, 37);
        assertEquals(9, shape.capacity(), "floor(0.25 * 37)");
        assertEquals(List.of(new PlanShape.Layer(0, true, 9), new PlanShape.Layer(1, false, 37), new PlanShape.Layer(2, true, 9)),
                shape.layers());
        assertEquals(74, shape.rows());
    }

    @Test
    void shapesThatCannotBePlannedAreOneLineErrors() {
        ModelConfig config = TestModels.config(1, 2, 0.5, List.of(), RouterWeighting.RAW);
        assertEquals("batch must hold at least one sequence", assertThrows(ModException.class, () -> PlanShape.of(config, 0, 4)).getMessage());
        assertEquals("sequences must hold at least one token", assertThrows(ModException.class, () -> PlanShape.of(config, 1, 0)).getMessage());
        int tooLong = config.maxSeqLen() + 1;
        assertEquals("sequence length " + tooLong + " is above the model's max_seq_len " + config.maxSeqLen(),
                assertThrows(ModException.class, () -> PlanShape.of(config, 1, tooLong)).getMessage());
    }
}
