package dev.mod.cli;

import picocli.CommandLine.Option;

import java.nio.file.Path;

/** --model: the model file a command reads, shared by every command that takes one. */
final class ModelFileOption {
    @Option(names = "--model", required = true, paramLabel = "MODEL", description = "A model file (.safetensors).")
    Path path;
}
