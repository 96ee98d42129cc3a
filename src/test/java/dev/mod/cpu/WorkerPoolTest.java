package dev.mod.cpu;

import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class WorkerPoolTest {
    /** Counts how often each chunk ran; flags a chunk that ran after its call had returned. */
    private static final class CountingTask implements WorkerPool.Task {
        final AtomicIntegerArray runs = new AtomicIntegerArray(4096);
        volatile boolean callOpen;
        volatile boolean ranOutsideCall;

        @Override
        public void run(int chunk, int worker) {
            if (!callOpen) {
                ranOutsideCall = true;
            }
            runs.incrementAndGet(chunk);
            if (chunk % 7 == 0) {
                Thread.onSpinWait();
            }
        }
    }

    @Test
    void everyChunkRunsExactlyOnceAndWithinItsCall() {
        try (WorkerPool pool = new WorkerPool(3)) {
            CountingTask task = new CountingTask();
            for (int call = 0; call < 20_000; call++) {
                // alternate small and large calls: a stale claim from a small call must not run in a large one
                int n = call % 2 == 0 ? 2 + call % 5 : 40 + call % 300;
                task.callOpen = true;
                pool.run(task, n);
                task.callOpen = false;
                for (int c = 0; c < n; c++) {
                    assertEquals(1, task.runs.getAndSet(c, 0), "call " + call + ", chunk " + c);
                }
                assertEquals(0, task.runs.get(n), "call " + call + " ran past its chunks");
            }
            assertTrue(!task.ranOutsideCall, "a chunk ran after its call had returned");
        }
    }

    @Test
    void aFailingChunkFailsTheCall() {
        try (WorkerPool pool = new WorkerPool(2)) {
            WorkerPool.Task failing = (chunk, worker) -> {
                if (chunk == 3) {
                    throw new ArithmeticException("chunk 3");
                }
            };
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> pool.run(failing, 10));
            assertTrue(e.getMessage().contains("chunk 3"), e.getMessage());
        }
    }

    @Test
    void aCallWithMoreChunksThanOneRoundHoldsRunsEveryChunkOnce() {
        int n = 2 * WorkerPool.MAX_CHUNKS + 5;
        AtomicIntegerArray runs = new AtomicIntegerArray(n);
        try (WorkerPool pool = new WorkerPool(2)) {
            pool.run((chunk, worker) -> runs.incrementAndGet(chunk), n);
        }
        for (int c = 0; c < n; c++) {
            assertEquals(1, runs.get(c), "chunk " + c);
        }
    }
}
