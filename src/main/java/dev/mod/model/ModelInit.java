package dev.mod.model;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Random initialisation, reproducible from a seed. Each tensor draws from its own stream, seeded from
 * the model seed and the tensor's name, so adding a tensor never changes the values of the others.
 */
public final class ModelInit {
    private ModelInit() {
    }

    public static Model random(ModelConfig config, long seed) {
        return random(config, seed, 0);
    }

    /** With a causal routing predictor of hidden size predictorDim in every routed layer (0: none). */
    public static Model random(ModelConfig config, long seed, int predictorDim) {
        Map<String, long[]> shapes = new LinkedHashMap<>(config.tensorShapes());
        if (predictorDim > 0) {
            for (int layer : config.routedLayers()) {
                shapes.put("layers." + layer + ".predictor.w1.weight", new long[] {predictorDim, config.dim()});
                shapes.put("layers." + layer + ".predictor.w2.weight", new long[] {1, predictorDim});
            }
        }
        long bytes = 0;
        for (long[] shape : shapes.values()) {
            bytes += Tensor.numel(shape) * Float.BYTES;
        }
        MemoryBudget.check("the model's weights", bytes);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (Map.Entry<String, long[]> e : shapes.entrySet()) {
            String name = e.getKey();
            long[] shape = e.getValue();
            float[] values = new float[Math.toIntExact(Tensor.numel(shape))];
            if (shape.length == 1) {
                java.util.Arrays.fill(values, 1.0f);
            } else {
                // Unit-scale activations: embeddings N(0,1), projections N(0, 1/in).
                double std = name.equals("tok_embeddings.weight") ? 1.0 : 1.0 / Math.sqrt(shape[1]);
                SplittableRandom random = new SplittableRandom(mix(seed, name));
                for (int i = 0; i < values.length; i++) {
                    values[i] = (float) (random.nextGaussian() * std);
                }
            }
            tensors.put(name, Tensor.of(name, values, shape));
        }
        return new Model(config, tensors, null);
    }

    private static long mix(long seed, String name) {
        long h = seed * 0x9E3779B97F4A7C15L;
        for (int i = 0; i < name.length(); i++) {
            h = (h ^ name.charAt(i)) * 0x100000001B3L;
        }
        return h ^ (h >>> 31);
    }
}
