package dev.mod.model;

/** RoPE's angles, as every executor's tables hold them: pair j of a head of dh at position p turns by p * theta^(-2j / dh). */
public final class Rope {
    private Rope() {
    }

    // cos, sin [positions, dh / 2]: rows [from, to) written
    public static void fill(float[] cos, float[] sin, double theta, int dh, int from, int to) {
        int half = dh / 2;
        for (int p = from; p < to; p++) {
            for (int j = 0; j < half; j++) {
                double angle = p * Math.pow(theta, -2.0 * j / dh);
                cos[p * half + j] = (float) Math.cos(angle);
                sin[p * half + j] = (float) Math.sin(angle);
            }
        }
    }
}
