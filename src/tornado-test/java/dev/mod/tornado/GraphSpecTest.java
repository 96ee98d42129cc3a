package dev.mod.tornado;

import org.junit.jupiter.api.Test;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** How GraphSpec.build hands buffers between graphs, and the plans it refuses to build. */
class GraphSpecTest {
    private static GraphSpec graph(String name, Object... buffers) {
        return new GraphSpec(name).task("t", g -> { }, buffers);
    }

    @Test
    void aBufferOnlySomePredecessorsUseIsRefused() {
        FloatArray shared = new FloatArray(4);
        FloatArray other = new FloatArray(4);
        List<GraphSpec> specs = List.of(graph("a", shared), graph("b", other), graph("c", shared));
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> GraphSpec.build(specs, Map.of("c", List.of("a", "b"))));
        assertTrue(e.getMessage().contains("only some of the graphs before it"), e.getMessage());
    }

    @Test
    void aBufferThatSkipsAGraphOfAChainIsRefused() {
        FloatArray skipped = new FloatArray(4);
        List<GraphSpec> specs = List.of(graph("a", skipped), graph("b", new FloatArray(4)), graph("c", skipped));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> GraphSpec.build(specs, GraphSpec.chain(specs)));
        assertTrue(e.getMessage().contains("buffers must pass from each graph to the next"), e.getMessage());
    }

    @Test
    void alternativeWaysInMayEachKeepTheirOwnCopyOfABufferMarkedOwn() {
        FloatArray state = new FloatArray(4);
        FloatArray weights = new FloatArray(4);
        GraphSpec step = new GraphSpec("step").task("t", g -> { }, state, weights);
        GraphSpec chunk = new GraphSpec("chunk").task("t", g -> { }, state, weights);
        List<GraphSpec> specs = List.of(graph("init", state), step, chunk, graph("next", state));
        Map<String, List<String>> before = Map.of("step", List.of("init"), "chunk", List.of("init"), "next", List.of("step", "chunk"));
        assertThrows(IllegalStateException.class, () -> GraphSpec.build(specs, before), "chunk would hold a second copy unnoticed");
        chunk.own.add(weights);
        assertEquals(4, GraphSpec.build(specs, before).length);
    }
}
