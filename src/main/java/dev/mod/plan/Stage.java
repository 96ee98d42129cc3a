package dev.mod.plan;

/** One step of the static forward plan: fixed buffers, fixed shapes, run by a backend's kernels. */
public interface Stage {
    /** A short name with the layer, such as "layer3.attention". */
    String name();

    /** Shapes of what the stage reads and writes, for plan listings. */
    String shapes();

    void run(Kernels kernels);
}
