package dev.mod.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `mod eval` scores a text as training's evaluation does, on every backend and routing rule. */
class EvalCommandTest extends ConsoleTest {
    @TempDir
    Path dir;

    /**
     * 1,400 bytes: the held-out tenth is 140 bytes, 4 windows of 32 (and 11 bytes left over), so a training run with
     * 2 evaluation batches of 2 scores exactly the windows that `mod eval` scores.
     */
    private Path text() throws IOException {
        String line = "All happy families are alike; each unhappy family is unhappy in its own way. ";
        return Files.writeString(dir.resolve("text.txt"), line.repeat(20).substring(0, 1400));
    }

    private Path trained(Path text) {
        Path run = dir.resolve("run");
        assertEquals(0, mod("train", "--quiet", "--preset", "small", "--data", text.toString(), "--steps", "6", "--batch", "2",
                "--seq", "32", "--eval-every", "3", "--eval-batches", "2", "--predictor-dim", "8", "--out", run.toString()), stderr());
        return run;
    }

    private JsonNode eval(String... args) throws IOException {
        List<String> all = new ArrayList<>(List.of("eval", "--quiet", "--json"));
        all.addAll(Arrays.asList(args));
        assertEquals(0, mod(all.toArray(new String[0])), stderr());
        return new ObjectMapper().readTree(stdout());
    }

    @Test
    void theRoutingAnalysisGroupsTheTokensByTheRoutedBlocksThatProcessedThem() throws IOException {
        Path text = text();
        String model = trained(text).resolve("model.safetensors").toString();
        for (String rule : List.of("topk", "router")) {
            Path out = dir.resolve("analysis-" + rule);
            JsonNode r = eval("--model", model, "--text", text.toString(), "--seq", "32", "--part", "all", "--routing", rule,
                    "--routing-analysis", out.toString());
            JsonNode a = r.get("routing_analysis");
            assertEquals(new ObjectMapper().readTree(out.resolve("routing_entropy.json").toFile()), a);
            assertTrue(Files.size(out.resolve("routing_entropy.png")) > 1000);
            int layers = r.get("routed_fraction").size();
            assertEquals(layers, a.get("routed_layers").asInt());
            assertEquals(layers + 1, a.get("by_routed_blocks").size(), "0 to R blocks");
            long tokens = r.get("scored_bytes").asLong();
            double blocks = 0;
            double loss = 0;
            long counted = 0;
            for (JsonNode g : a.get("by_routed_blocks")) {
                long n = g.get("tokens").asLong();
                counted += n;
                blocks += g.get("blocks").asInt() * (double) n;
                if (n > 0) {
                    loss += n * g.get("mean_loss").asDouble();
                    assertTrue(g.get("mean_entropy").asDouble() > 0 && g.get("mean_entropy").asDouble() < Math.log(258));
                }
            }
            assertEquals(tokens, counted, rule + ": every scored token in one group");
            double routed = 0;
            for (JsonNode f : r.get("routed_fraction")) {
                routed += f.asDouble() * tokens;
            }
            assertEquals(routed, blocks, 1e-6, rule + ": the groups hold every routing decision the layers made");
            assertEquals(r.get("loss_nats_per_byte").asDouble(), loss / tokens, 1e-9, rule + ": the groups' losses are the loss");
            double c = a.get("correlation_blocks_entropy").asDouble();
            assertTrue(c >= -1 && c <= 1, "a correlation: " + c);
        }
        Path config = Files.writeString(dir.resolve("dense.json"), "{\"vocab_size\": 258, \"dim\": 16, \"n_layers\": 2, "
                + "\"n_heads\": 2, \"hidden_dim\": 32, \"max_seq_len\": 64, \"capacity\": 0.5, \"routed_layers\": []}");
        assertEquals(0, mod("init", "--config", config.toString(), "--out", dir.resolve("dense.safetensors").toString()), stderr());
        assertEquals(1, mod("eval", "--quiet", "--model", dir.resolve("dense.safetensors").toString(), "--text", text.toString(),
                "--seq", "32", "--routing-analysis", dir.resolve("none").toString()));
        assertTrue(stderr().contains("--routing-analysis needs routed layers; this model has none"), stderr());
    }

    @Test
    void theHeldOutLossIsTrainingsOnEveryBackendAndTheCausalRulesReportWhatTheyRouted() throws IOException {
        Path text = text();
        Path run = trained(text);
        String[] lines = Files.readString(run.resolve("log.jsonl")).strip().split("\n");
        double trainingEval = Double.NaN;
        for (String l : lines) {
            JsonNode node = new ObjectMapper().readTree(l);
            if (node.has("eval_loss") && node.get("step").asInt() == 6) {
                trainingEval = node.get("eval_loss").asDouble();
            }
        }
        String model = run.resolve("model.safetensors").toString();
        // batch 3: a full pass and a shorter last one
        JsonNode cpu = eval("--model", model, "--text", text.toString(), "--seq", "32", "--batch", "3");
        assertEquals(4, cpu.get("windows").asInt());
        assertEquals(128, cpu.get("scored_bytes").asLong());
        assertEquals(11, cpu.get("unscored_bytes").asLong());
        double nats = cpu.get("loss_nats_per_byte").asDouble();
        assertEquals(trainingEval, nats, 1e-4, "the training run's own held-out loss, from its training kernels");
        assertEquals(nats / Math.log(2), cpu.get("bits_per_byte").asDouble(), 1e-12);
        assertEquals(Math.exp(nats), cpu.get("perplexity").asDouble(), 1e-9);
        assertEquals(0.125, cpu.get("routed_fraction").get("1").asDouble(), 1e-12, "top-k routes its capacity");

        JsonNode reference = eval("--model", model, "--text", text.toString(), "--seq", "32", "--backend", "reference");
        assertEquals(nats, reference.get("loss_nats_per_byte").asDouble(), 1e-4);

        for (String rule : List.of("router", "predictor")) {
            JsonNode c = eval("--model", model, "--text", text.toString(), "--seq", "32", "--routing", rule, "--part", "all");
            JsonNode r = eval("--model", model, "--text", text.toString(), "--seq", "32", "--routing", rule, "--part", "all",
                    "--backend", "reference");
            assertEquals(43, c.get("windows").asInt());
            assertEquals(r.get("loss_nats_per_byte").asDouble(), c.get("loss_nats_per_byte").asDouble(), 1e-4, rule);
            assertEquals(r.get("routed_fraction"), c.get("routed_fraction"), rule + ": the same tokens routed on both backends");
            double f = c.get("routed_fraction").get("3").asDouble();
            assertTrue(f >= 0 && f <= 1, rule + " " + f);
        }
        JsonNode first = eval("--model", model, "--text", text.toString(), "--seq", "32", "--max-windows", "1");
        assertEquals(1, first.get("windows").asInt());
        assertEquals(32, first.get("scored_bytes").asLong());
    }

    @Test
    void theTableSaysWhatWasScoredAndBadOptionsAreRefused() throws IOException {
        Path text = text();
        Path model = dir.resolve("m.safetensors");
        assertEquals(0, mod("init", "--preset", "small", "--out", model.toString()), stderr());
        assertEquals(0, mod("eval", "--quiet", "--model", model.toString(), "--text", text.toString(), "--seq", "32"), stderr());
        assertTrue(stdout().contains("scored: held-out part, 4 windows of T = 32 (128 bytes; its last 11 bytes, shorter than a window, not scored)"),
                stdout());
        assertTrue(stdout().contains(" nats per byte, ") && stdout().contains(" bits per byte, perplexity "), stdout());
        refused("--part must be held-out or all, got \"middle\"", "eval", "--model", model.toString(), "--text", text.toString(),
                "--part", "middle");
        refused("--seq must be in [1, 512]", "eval", "--model", model.toString(), "--text", text.toString(), "--seq", "513");
        refused("is a training control", "eval", "--model", model.toString(), "--text", text.toString(), "--routing", "stochastic");
    }
}
