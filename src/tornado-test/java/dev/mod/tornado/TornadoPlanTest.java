package dev.mod.tornado;

import dev.mod.OclgrindLogCheck;
import dev.mod.TestModels;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelInit;
import dev.mod.model.RouterWeighting;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The static plan on the device: after the first batch only the tokens move in, the logits only when asked for, and nothing is recompiled. */
@ExtendWith(OclgrindLogCheck.class)
class TornadoPlanTest {
    @Test
    void afterTheFirstBatchOnlyTokensMoveInLogitsOutOnDemandAndNothingIsRecompiled() {
        ModelConfig config = TestModels.config(2, 2, 0.25, List.of(1), RouterWeighting.SIGMOID);
        Model model = ModelInit.random(config, 21);
        int batch = 2;
        int seqLen = 16;
        try (TornadoForwardPlan plan = new TornadoForwardPlan(model, batch, seqLen, true)) {
            plan.keepRoutingOutputs(false);
            plan.run(TestModels.tokens(batch, seqLen, config.vocabSize(), 1));
            long firstIn = plan.lastProfile().stream().mapToLong(GraphProfile::bytesIn).sum();
            int[][] second = TestModels.tokens(batch, seqLen, config.vocabSize(), 2);
            plan.run(second);
            List<GraphProfile> profile = plan.lastProfile();
            assertEquals(List.of("embedding", "layer0", "layer1", "head"),
                    profile.stream().map(GraphProfile::graph).toList());
            // TornadoVM counts each task launch's argument block (24 bytes on PoCL) as bytes in; data that
            // moved would be far more: the smallest activation here is batch * seqLen * dim floats.
            long perTaskArguments = 32;
            long tokensBytes = (long) batch * seqLen * Integer.BYTES;
            long smallestActivation = (long) batch * seqLen * config.dim() * Float.BYTES;
            long logitsBytes = (long) batch * seqLen * config.vocabSize() * Float.BYTES;
            assertTrue(firstIn > 10 * tokensBytes, "the first batch moves the weights: " + firstIn);
            for (GraphProfile graph : profile) {
                long data = graph.bytesIn() - graph.tasks() * perTaskArguments - (graph.graph().equals("embedding") ? tokensBytes : 0);
                assertTrue(data <= 32 && perTaskArguments * graph.tasks() < smallestActivation,
                        graph + ": only the tokens (and launch arguments) move in");
                assertEquals(0, graph.bytesOut(), graph + ": nothing moves out until it is asked for");
            }
            // Fused stages: 8 launches per dense layer, 3 more (router, rank, select) in a routed one.
            assertEquals(8, profile.get(1).tasks(), "launches of the dense layer");
            assertEquals(11, profile.get(2).tasks(), "launches of the routed layer");
            long runBytes = plan.hostDeviceBytes();
            plan.logits();
            plan.logits();
            assertEquals(runBytes + logitsBytes, plan.hostDeviceBytes(), "the logits move out once, when asked for");
            for (GraphProfile graph : profile) {
                assertEquals(0, graph.compileNanos(), graph.graph() + " recompiled");
                assertTrue(graph.kernelNanos() > 0, graph.graph() + " ran no kernel on the device");
            }
            plan.keepRoutingOutputs(true);
            plan.run(second);
            float[] expected = TestModels.run(model, second).logits();
            float[] actual = plan.logits();
            double worst = 0;
            double largest = 0;
            for (int i = 0; i < expected.length; i++) {
                worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
                largest = Math.max(largest, Math.abs(expected[i]));
            }
            assertTrue(worst / largest < 1e-4, "relative error " + worst / largest);
            assertArrayEquals(TestModels.run(model, second).selected(1), plan.selected(1));
        }
    }
}
