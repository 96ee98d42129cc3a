package dev.mod.cli;

import dev.mod.ModException;
import dev.mod.io.ModelFile;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelCost;
import dev.mod.plan.ForwardPlan;
import dev.mod.plan.Stage;
import dev.mod.reference.ReferenceKernels;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.concurrent.Callable;

@Command(name = "info", mixinStandardHelpOptions = true,
        description = "Parameters, FLOPs per forward pass and KV-cache bytes per token of a model and of its dense counterpart.")
final class InfoCommand implements Callable<Integer> {
    @Parameters(index = "0", arity = "0..1", paramLabel = "MODEL", description = "A model file (.safetensors), or --model.")
    Path positional;

    @Option(names = "--model", paramLabel = "MODEL", description = "A model file (.safetensors), as every other command takes it.")
    Path option;

    @Option(names = "--seq", paramLabel = "T", description = "Sequence length for the FLOP figures (default: max_seq_len).")
    Integer seqLen;

    @Option(names = "--stages", description = "Also list the stages of the static forward plan for one sequence of T tokens.")
    boolean stages;

    @Override
    public Integer call() {
        if ((positional == null) == (option == null)) {
            throw new ModException(positional == null ? "info needs a model: --model MODEL (or MODEL)" : "info takes one model: MODEL or --model, not both");
        }
        Path modelPath = positional != null ? positional : option;
        try (Model model = ModelFile.load(modelPath)) {
            ModelConfig c = model.config();
            int t = seqLen == null ? c.maxSeqLen() : seqLen;
            if (t < 1 || t > c.maxSeqLen()) {
                throw new ModException("--seq " + t + " is outside [1, max_seq_len = " + c.maxSeqLen() + "]");
            }
            ModelConfig dense = c.dense();
            double flops = ModelCost.forwardFlops(c, t);
            double denseFlops = ModelCost.forwardFlops(dense, t);
            double kv = ModelCost.kvCacheBytesPerToken(c);
            double denseKv = ModelCost.kvCacheBytesPerToken(dense);
            System.out.printf("model       %s%n", modelPath);
            System.out.printf("config      %s%n", Describe.config(c));
            System.out.printf("capacity    k = %d of T = %d tokens per routed layer%n", c.capacityTokens(t), t);
            System.out.printf("parameters  %,d%n", model.parameterCount());
            System.out.printf("%n%-28s %14s %14s %8s%n", "", "MoD", "dense", "ratio");
            System.out.printf("%-28s %14.4g %14.4g %8.3f%n", "FLOPs per forward (T=" + t + ")", flops, denseFlops, flops / denseFlops);
            System.out.printf("%-28s %14.1f %14.1f %8.3f%n", "KV-cache bytes per token", kv, denseKv, kv / denseKv);
            if (stages) {
                ForwardPlan plan = new ForwardPlan(model, new ReferenceKernels(), 1, t);
                System.out.printf("%nforward plan for B = 1, T = %d (%d stages)%n", t, plan.stages().size());
                for (Stage s : plan.stages()) {
                    System.out.printf("  %-20s %s%n", s.name(), s.shapes());
                }
            }
        }
        return 0;
    }
}
