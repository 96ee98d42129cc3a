package dev.mod.cli;

import dev.mod.ModException;
import dev.mod.convert.GgufExport;
import dev.mod.io.AtomicFiles;
import dev.mod.io.ModelFile;
import dev.mod.model.Model;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "export", mixinStandardHelpOptions = true,
        description = {"Write a dense model in another engine's format: --format gguf, a GGUF file that llama.cpp runs with its "
                + "llama architecture (the same logits; the byte vocabulary as a byte-level BPE vocabulary).",
                "A MoD model has no equivalent there and is refused."})
final class ExportCommand implements Callable<Integer> {
    @Mixin
    ModelFileOption model;

    @Option(names = "--format", required = true, paramLabel = "gguf", description = "The format: gguf.")
    String format;

    @Option(names = "--name", paramLabel = "NAME", description = "general.name in the file (default: the model file's name).")
    String name;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "The file to write.")
    Path out;

    @Override
    public Integer call() {
        if (!format.equals("gguf")) {
            throw new ModException("--format must be gguf, got \"" + format + "\"");
        }
        AtomicFiles.refuseInputs(out, model.path);
        try (Model m = ModelFile.load(model.path)) {
            String fileName = model.path.getFileName().toString();
            String label = name != null ? name : fileName.replaceFirst("\\.safetensors$", "");
            GgufExport.write(m, label, out);
            System.out.printf("wrote %s: GGUF v3, llama architecture, %d layers, %s matrices, vocabulary of %d (bytes, BOS, EOS)%n",
                    out, m.config().nLayers(), m.matrixTypes().first(), m.config().vocabSize());
        }
        return 0;
    }
}
