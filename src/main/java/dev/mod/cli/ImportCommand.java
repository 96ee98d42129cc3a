package dev.mod.cli;

import dev.mod.ModException;
import dev.mod.backend.Backend;
import dev.mod.convert.HfImport;
import dev.mod.convert.ModConversion;
import dev.mod.io.AtomicFiles;
import dev.mod.io.ModelFile;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

@Command(name = "import", mixinStandardHelpOptions = true,
        description = {"Read another engine's model into a mod model file: --from hf DIR, a Hugging Face Llama checkpoint "
                + "(config.json, model.safetensors or shards with model.safetensors.index.json), the same logits on its own tokens.",
                "With --mod-capacity it becomes a MoD model: the same weights, the blocks of --routed-layers routed at that capacity, "
                        + "each router fitted so that the model starts close to the dense one (see docs/model.md); "
                        + "`mod train --init-from` then tunes it."})
final class ImportCommand implements Callable<Integer> {
    @Option(names = "--from", required = true, paramLabel = "hf", description = "The source format: hf.")
    String from;

    @Parameters(index = "0", paramLabel = "DIR", description = "The checkpoint's folder.")
    Path dir;

    @Option(names = "--out", required = true, paramLabel = "MODEL", description = "The mod model file to write.")
    Path out;

    @Option(names = "--mod-capacity", paramLabel = "C", description = "Make it a MoD model whose routed blocks process this "
            + "fraction of each sequence's tokens (0 < C <= 1).")
    Double capacity;

    @Option(names = "--routed-layers", defaultValue = "every-other", paramLabel = "every-other|I,J,...",
            description = "With --mod-capacity: which blocks are routed: every-other (1, 3, 5, ..., the paper's) or a list "
                    + "(default: ${DEFAULT-VALUE}).")
    String routedLayers;

    @Option(names = "--calibration-tokens", paramLabel = "FILE", description = "With --mod-capacity: token ids (rows as "
            + "forward --tokens-file takes them, from the checkpoint's own tokenizer) the routers are fitted on "
            + "(default: 8 rows of 128 random ids from --seed).")
    Path calibrationTokens;

    @Option(names = "--seed", defaultValue = "0", description = "Seed of the random calibration ids (default: ${DEFAULT-VALUE}).")
    long seed;

    @Mixin
    BackendOption backend;

    @Override
    public Integer call() {
        if (!from.equals("hf")) {
            throw new ModException("--from must be hf, got \"" + from + "\"");
        }
        if (capacity == null && calibrationTokens != null) {
            throw new ModException("--calibration-tokens applies to a MoD conversion: give --mod-capacity too");
        }
        if (capacity != null && !(capacity > 0 && capacity <= 1)) {
            throw new ModException("--mod-capacity must be in (0, 1], got " + capacity);
        }
        AtomicFiles.refuseInputs(out, dir, calibrationTokens);
        try (HfImport checkpoint = HfImport.open(dir)) {
            Model dense = checkpoint.model();
            ModelConfig c = dense.config();
            if (capacity == null) {
                ModelFile.save(dense, out);
                System.out.printf("wrote %s: %,d parameters, %s matrices, %s%n", out, dense.parameterCount(),
                        dense.matrixTypes(), Describe.config(c));
                return 0;
            }
            List<Integer> routed = layers(c.nLayers());
            int[][] calibration = calibrationTokens != null ? TokenBatch.read(calibrationTokens) : randomIds(c);
            try (Backend runtime = backend.start()) {
                ModConversion.Result result = ModConversion.toMod(dense, capacity, routed, calibration, runtime.hostKernels("conversion"));
                ModelFile.save(result.model(), out);
                System.out.printf("wrote %s: %,d parameters, %s%n", out, result.model().parameterCount(),
                        Describe.config(result.model().config()));
                for (ModConversion.RouterFit f : result.fits()) {
                    System.out.printf(Locale.ROOT, "  router of layer %d: r = %.3f +- %.3f on the %d calibration tokens (fitted to 1)%n",
                            f.layer(), f.mean(), f.sd(), calibration.length * calibration[0].length);
                }
            }
        }
        return 0;
    }

    private List<Integer> layers(int nLayers) {
        if (routedLayers.equals("every-other")) {
            return ModelConfig.everyOtherLayer(nLayers);
        }
        List<Integer> list = new ArrayList<>();
        for (String item : routedLayers.split(",", -1)) {
            try {
                list.add(Integer.parseInt(item.strip()));
            } catch (NumberFormatException e) {
                throw new ModException("--routed-layers must be every-other or layer numbers such as 1,3; got \"" + routedLayers + "\"");
            }
        }
        return list;
    }

    private int[][] randomIds(ModelConfig c) {
        SplittableRandom random = new SplittableRandom(seed);
        int[][] ids = new int[8][Math.min(128, c.maxSeqLen())];
        for (int[] row : ids) {
            for (int i = 0; i < row.length; i++) {
                row[i] = random.nextInt(c.vocabSize());
            }
        }
        return ids;
    }
}
