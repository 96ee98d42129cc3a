package dev.mod.cli;

import dev.mod.ModException;
import dev.mod.io.ModelFile;
import dev.mod.model.DType;
import dev.mod.model.Model;
import dev.mod.model.ModelInit;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "init", mixinStandardHelpOptions = true,
        description = "Create a model with random weights, reproducible from the seed, and write its model file.")
final class InitCommand implements Callable<Integer> {
    @ArgGroup(exclusive = true, multiplicity = "1")
    Source source;

    static final class Source {
        @Option(names = "--config", paramLabel = "FILE.json", required = true, description = "A model config (JSON).")
        Path config;

        @Option(names = "--preset", converter = PresetName.class, paramLabel = "NAME", required = true, description = "A built-in config: tiny, small or bench.")
        String preset;
    }

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random weights (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--predictor-dim", defaultValue = "0", paramLabel = "P",
            description = "Give every routed layer a causal routing predictor with a hidden layer of P units (default: none).")
    int predictorDim;

    @Option(names = "--dtype", defaultValue = "f32", paramLabel = "f32|bf16|f16",
            description = "How the matrices are stored (rounded to nearest even); norms, routers and predictors stay F32. "
                    + "The cpu backend keeps 16-bit matrices in 16 bits in memory (default: ${DEFAULT-VALUE}).")
    String dtype;

    @Option(names = "--out", required = true, paramLabel = "MODEL", description = "The model file to write (.safetensors).")
    Path out;

    @Override
    public Integer call() {
        ModelSource from = new ModelSource();
        from.config = source.config;
        from.preset = source.preset;
        if (predictorDim < 0) {
            throw new ModException("--predictor-dim must be >= 0, got " + predictorDim);
        }
        DType type = switch (dtype.toLowerCase(java.util.Locale.ROOT)) {
            case "f32" -> DType.F32;
            case "bf16" -> DType.BF16;
            case "f16" -> DType.F16;
            default -> throw new ModException("--dtype must be f32, bf16 or f16, got \"" + dtype + "\"");
        };
        Model model = ModelInit.random(from.configOrPreset(), seed, predictorDim).withMatrixType(type);
        ModelFile.save(model, out);
        System.out.printf("wrote %s: %,d parameters%s, %s matrices, %s%n", out, model.parameterCount(),
                predictorDim == 0 ? "" : String.format(" (+ %,d in the routing predictors)", model.predictorParameterCount()),
                type.name(), Describe.config(model.config()));
        return 0;
    }
}
