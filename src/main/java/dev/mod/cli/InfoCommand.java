package dev.mod.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mod.ModException;
import dev.mod.io.ModelFile;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.model.ModelCost;
import dev.mod.model.RoutingCalibration;
import dev.mod.plan.ForwardPlan;
import dev.mod.plan.Stage;
import dev.mod.reference.ReferenceKernels;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;

@Command(name = "info", mixinStandardHelpOptions = true,
        description = "Parameters, matrix type, predictor, calibration, FLOPs per forward pass and KV-cache bytes per token of a model "
                + "and of its dense counterpart; --json for a machine-readable copy.")
final class InfoCommand implements Callable<Integer> {
    @Parameters(index = "0", arity = "0..1", paramLabel = "MODEL", description = "A model file (.safetensors), or --model.")
    Path positional;

    @Option(names = "--model", paramLabel = "MODEL", description = "A model file (.safetensors), as every other command takes it.")
    Path option;

    @Option(names = "--seq", paramLabel = "T", description = "Sequence length for the FLOP figures (default: max_seq_len).")
    Integer seqLen;

    @Option(names = "--stages", description = "Also list the stages of the static forward plan for one sequence of T tokens.")
    boolean stages;

    @Option(names = "--json", description = "One JSON object on standard output instead of the table.")
    boolean json;

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
            ObjectNode info = summary(modelPath, model, t);
            if (json) {
                System.out.println(info.toPrettyString());
            } else {
                print(info, c);
            }
        }
        return 0;
    }

    /** Everything the command reports, in the form --json prints; the table is printed from it. */
    private ObjectNode summary(Path modelPath, Model model, int t) {
        ModelConfig c = model.config();
        ModelConfig dense = c.dense();
        ObjectNode info = JsonNodeFactory.instance.objectNode();
        info.put("model", modelPath.toString());
        info.set("config", c.toJsonTree());
        info.put("matrix_dtype", model.matrixTypes().stream().map(Enum::name).collect(Collectors.joining(", ")));
        info.put("parameters", model.parameterCount());
        info.put("active_parameters", Math.round(ModelCost.activeParameters(c, model.parameterCount())));
        info.put("predictor_parameters", model.predictorParameterCount());
        info.put("predictor_dim", model.predictorDim());
        RoutingCalibration calibration = model.calibration();
        if (calibration == null) {
            info.putNull("calibration");
        } else {
            ObjectNode cal = info.putObject("calibration");
            ObjectNode thresholds = cal.putObject("thresholds");
            calibration.thresholds().forEach((layer, value) -> thresholds.put(Integer.toString(layer), value));
            cal.put("tokens", calibration.tokens());
            cal.put("seq_len", calibration.seqLen());
        }
        info.put("seq_len", t);
        info.put("capacity_tokens", c.capacityTokens(t));
        info.put("forward_flops", ModelCost.forwardFlops(c, t));
        info.put("dense_forward_flops", ModelCost.forwardFlops(dense, t));
        info.put("kv_cache_bytes_per_token", ModelCost.kvCacheBytesPerToken(c));
        info.put("dense_kv_cache_bytes_per_token", ModelCost.kvCacheBytesPerToken(dense));
        if (stages) {
            ArrayNode list = info.putArray("stages");
            for (Stage s : new ForwardPlan(model, new ReferenceKernels(), 1, t).stages()) {
                list.addObject().put("name", s.name()).put("shapes", s.shapes());
            }
        }
        return info;
    }

    private static void print(ObjectNode info, ModelConfig c) {
        int t = info.get("seq_len").asInt();
        System.out.printf("model       %s%n", info.get("model").asText());
        System.out.printf("config      %s%n", Describe.config(c));
        System.out.printf("matrices    %s (norms, routers and predictors F32)%n", info.get("matrix_dtype").asText());
        System.out.printf("capacity    k = %d of T = %d tokens per routed layer%n", info.get("capacity_tokens").asInt(), t);
        System.out.printf("parameters  %,d%s%n", info.get("parameters").asLong(), info.get("predictor_dim").asInt() == 0 ? ""
                : String.format(" (+ %,d in the routing predictors, used by causal routing only)", info.get("predictor_parameters").asLong()));
        if (c.hasExperts()) {
            System.out.printf("active      %,d parameters a token uses on average (each expert takes %s of the rows)%n",
                    info.get("active_parameters").asLong(), c.experts().capacity());
        }
        System.out.printf("predictor   %s%n", info.get("predictor_dim").asInt() == 0 ? "none"
                : "hidden " + info.get("predictor_dim").asInt() + " in each routed layer");
        JsonNode cal = info.get("calibration");
        System.out.printf("calibrated  %s%n", cal.isNull() ? "no (mod calibrate sets the calibrated rule's thresholds)"
                : "thresholds " + cal.get("thresholds") + " from " + cal.get("tokens").asLong() + " tokens at T = " + cal.get("seq_len").asInt());
        double flops = info.get("forward_flops").asDouble();
        double denseFlops = info.get("dense_forward_flops").asDouble();
        double kv = info.get("kv_cache_bytes_per_token").asDouble();
        double denseKv = info.get("dense_kv_cache_bytes_per_token").asDouble();
        System.out.printf("%n%-28s %14s %14s %8s%n", "", "MoD", "dense", "ratio");
        System.out.printf("%-28s %14.4g %14.4g %8.3f%n", "FLOPs per forward (T=" + t + ")", flops, denseFlops, flops / denseFlops);
        System.out.printf("%-28s %14.1f %14.1f %8.3f%n", "KV-cache bytes per token", kv, denseKv, kv / denseKv);
        if (info.has("stages")) {
            System.out.printf("%nforward plan for B = 1, T = %d (%d stages)%n", t, info.get("stages").size());
            for (JsonNode s : info.get("stages")) {
                System.out.printf("  %-20s %s%n", s.get("name").asText(), s.get("shapes").asText());
            }
        }
    }
}
