package dev.mod.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * One fixed set of threads that run the chunks of a task in parallel, the calling thread among them.
 * A chunk is the unit of work and of determinism: each chunk writes its own outputs in a fixed order,
 * so results are the same bits whichever thread runs it and however many threads there are.
 * Running a task allocates nothing, which keeps a forward pass free of garbage.
 */
public final class WorkerPool implements AutoCloseable {
    /** Work split into numbered chunks; worker is the index of the running thread, for its scratch space. */
    public interface Task {
        void run(int chunk, int worker);
    }

    /** The most chunks one round of a call can have (20 bits of the claim word); a call with more runs in rounds. */
    public static final int MAX_CHUNKS = (1 << 20) - 1;
    private static final long SPIN_NANOS = 50_000;

    private final Thread[] workers;
    /**
     * The claim word: generation (24 bits), chunk count (20 bits), next unclaimed chunk (20 bits). A thread
     * claims a chunk by incrementing the word, and checks the chunk against the count in the same word,
     * so a claim can never mix one call's count with another call's chunks.
     */
    private final AtomicLong claims = new AtomicLong();
    private final AtomicInteger finished = new AtomicInteger();
    private volatile Task task;
    private volatile boolean closed;
    private volatile Throwable failure;
    private int generation;

    public WorkerPool(int threads) {
        if (threads < 1) {
            throw new IllegalArgumentException("threads must be at least 1, got " + threads);
        }
        workers = new Thread[threads - 1];
        for (int w = 0; w < workers.length; w++) {
            int index = w + 1;
            workers[w] = Thread.ofPlatform().daemon().name("mod-cpu-" + index).unstarted(() -> workLoop(index));
            workers[w].start();
        }
    }

    private static int generationOf(long word) {
        return (int) (word >>> 40);
    }

    private static int countOf(long word) {
        return (int) (word >>> 20) & MAX_CHUNKS;
    }

    private static int nextOf(long word) {
        return (int) word & MAX_CHUNKS;
    }

    /** The number of threads, the caller's included: workers are numbered 0 .. threads() - 1. */
    public int threads() {
        return workers.length + 1;
    }

    /** Runs chunks 0 .. n-1 of the task and returns when all are done. */
    public void run(Task t, int n) {
        if (n <= 0) {
            return;
        }
        if (n > MAX_CHUNKS) {
            // More chunks than the claim word counts (a batch of many short sequences): in rounds of MAX_CHUNKS.
            for (int base = 0; base < n; base += MAX_CHUNKS) {
                int from = base;
                run((chunk, worker) -> t.run(from + chunk, worker), Math.min(MAX_CHUNKS, n - base));
            }
            return;
        }
        if (workers.length == 0 || n == 1) {
            for (int c = 0; c < n; c++) {
                t.run(c, 0);
            }
            return;
        }
        task = t;
        failure = null;
        finished.set(0);
        generation = (generation + 1) & 0xFFFFFF;
        claims.set(((long) generation << 40) | ((long) n << 20));
        for (Thread w : workers) {
            LockSupport.unpark(w);
        }
        claimAndRun(generation, 0);
        long waitingSince = System.nanoTime();
        while (finished.get() < n) {
            // With more threads than cores the chunks still running may belong to a thread the OS has not
            // scheduled: after a short spin, give it the core instead of spinning on it.
            if (System.nanoTime() - waitingSince < SPIN_NANOS) {
                Thread.onSpinWait();
            } else {
                Thread.yield();
            }
        }
        Throwable failed = failure;
        if (failed != null) {
            throw new IllegalStateException("a parallel task failed: " + failed, failed);
        }
    }

    private void claimAndRun(int gen, int worker) {
        while (true) {
            long word = claims.get();
            int chunk = nextOf(word);
            if (generationOf(word) != gen || chunk >= countOf(word)) {
                return;
            }
            if (claims.compareAndSet(word, word + 1)) {
                try {
                    task.run(chunk, worker);
                } catch (Throwable e) {
                    failure = e;
                } finally {
                    finished.incrementAndGet();
                }
            }
        }
    }

    private void workLoop(int worker) {
        int seen = 0;
        while (!closed) {
            int gen = generationOf(claims.get());
            if (gen != seen) {
                seen = gen;
                claimAndRun(gen, worker);
                continue;
            }
            long idleSince = System.nanoTime();
            while (!closed && generationOf(claims.get()) == seen) {
                if (System.nanoTime() - idleSince < SPIN_NANOS) {
                    Thread.onSpinWait();
                } else {
                    LockSupport.parkNanos(this, 1_000_000);
                }
            }
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Thread w : workers) {
            LockSupport.unpark(w);
        }
    }
}
