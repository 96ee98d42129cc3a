package dev.mod.cli;

import dev.mod.io.ModelFile;
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

        @Option(names = "--preset", paramLabel = "NAME", required = true, description = "A built-in config: tiny, small or bench.")
        String preset;
    }

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random weights (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--out", required = true, paramLabel = "MODEL", description = "The model file to write (.safetensors).")
    Path out;

    @Override
    public Integer call() {
        ModelSource from = new ModelSource();
        from.config = source.config;
        from.preset = source.preset;
        Model model = ModelInit.random(from.configOrPreset(), seed);
        ModelFile.save(model, out);
        System.out.printf("wrote %s: %,d parameters, %s%n", out, model.parameterCount(), Describe.config(model.config()));
        return 0;
    }
}
