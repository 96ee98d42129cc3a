package dev.mod.train;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mod.ModException;
import dev.mod.StrictJson;
import dev.mod.model.Model;
import dev.mod.model.ModelConfig;
import dev.mod.plan.RoutingRule;

import java.util.List;

/**
 * Everything that decides a training run's numbers: the model (config, seed, predictor), the data, the
 * schedule and the optimizer. Two runs with equal settings produce the same weights bit for bit on the cpu
 * backend, whatever the thread count; a checkpoint stores them, and --resume refuses other settings.
 */
public record TrainSettings(
        @JsonProperty("model") String model,
        @JsonProperty("model_config") JsonNode modelConfig,
        @JsonProperty("predictor_dim") int predictorDim,
        @JsonProperty("routing") RoutingRule routing,
        @JsonProperty("seed") long seed,
        @JsonProperty("data") String data,
        @JsonProperty("max_data_bytes") int maxDataBytes,
        @JsonProperty("steps") int steps,
        @JsonProperty("batch") int batch,
        @JsonProperty("seq_len") int seqLen,
        @JsonProperty("lr") double lr,
        @JsonProperty("warmup") int warmup,
        @JsonProperty("min_lr_ratio") double minLrRatio,
        @JsonProperty("weight_decay") double weightDecay,
        @JsonProperty("clip") double clip,
        @JsonProperty("aux_router") double auxRouter,
        @JsonProperty("aux_predictor") double auxPredictor,
        @JsonProperty("eval_every") int evalEvery,
        @JsonProperty("eval_batches") int evalBatches,
        @JsonProperty("checkpoint_every") int checkpointEvery,
        @JsonProperty("init_from") @JsonInclude(JsonInclude.Include.NON_NULL) InitFrom initFrom) {

    /**
     * A run that starts from a model file's weights instead of random ones (its predictors, where it has none and the
     * run trains one, random from the seed): the file, its SHA-256, and what trains: "all", or "routers" (the routers
     * and predictors; every other gradient is zeroed, and weight decay, which applies to none of those, is off), and
     * the file's tokenizer where it is not mod's bytes (an imported checkpoint's), which the trained model keeps.
     */
    public record InitFrom(@JsonProperty("model") String model, @JsonProperty("sha256") String sha256,
                           @JsonProperty("train") String train,
                           @JsonProperty("tokenizer") @JsonInclude(JsonInclude.Include.NON_NULL) String tokenizer) {
        public static final List<String> TRAIN = List.of("all", "routers");

        public InitFrom {
            if (!TRAIN.contains(train)) {
                throw new ModException("--train must be all or routers, got \"" + train + "\"");
            }
        }

        public boolean routersOnly() {
            return train.equals("routers");
        }

        /** Whether a parameter trains: all do, or only the routers' and predictors'. */
        public boolean trains(String name) {
            return !routersOnly() || name.contains(".router.") || name.contains(".predictor.");
        }
    }

    /** A run from random weights. */
    public TrainSettings(String model, JsonNode modelConfig, int predictorDim, RoutingRule routing, long seed, String data,
                         int maxDataBytes, int steps, int batch, int seqLen, double lr, int warmup, double minLrRatio,
                         double weightDecay, double clip, double auxRouter, double auxPredictor, int evalEvery, int evalBatches,
                         int checkpointEvery) {
        this(model, modelConfig, predictorDim, routing, seed, data, maxDataBytes, steps, batch, seqLen, lr, warmup, minLrRatio,
                weightDecay, clip, auxRouter, auxPredictor, evalEvery, evalBatches, checkpointEvery, null);
    }

    /** What the trained model's token ids are: mod's bytes, or the tokenizer of the model the run started from. */
    public String tokenizer() {
        return initFrom == null || initFrom.tokenizer() == null ? Model.BYTE_TOKENS : initFrom.tokenizer();
    }

    /** The weight decay AdamW applies: none when only routers train (it applies to matrices, which are frozen then). */
    public double effectiveWeightDecay() {
        return initFrom != null && initFrom.routersOnly() ? 0 : weightDecay;
    }

    private static final ObjectMapper JSON = StrictJson.mapper();
    /** Evaluation windows are the held-out text's, cycled: more batches than this only repeat it (and never end). */
    public static final int MAX_EVAL_BATCHES = 10_000;

    public TrainSettings {
        if (routing == null) {
            routing = RoutingRule.TOP_K; // settings written before stochastic routing existed
        }
        if (routing.training() != RoutingRule.Training.ROUTES) {
            throw new ModException("routing: training routes with topk, stochastic or gaussian, not " + routing.name());
        }
        ModelConfig c = ModelConfig.fromJson(modelConfig.toString());
        positive("--steps", steps);
        positive("--batch", batch);
        positive("--seq", seqLen);
        positive("--eval-every", evalEvery);
        positive("--eval-batches", evalBatches);
        if (evalBatches > MAX_EVAL_BATCHES) {
            throw new ModException("--eval-batches must be at most " + MAX_EVAL_BATCHES + ", got " + evalBatches);
        }
        positive("--checkpoint-every", checkpointEvery);
        if (seqLen > c.maxSeqLen()) {
            throw new ModException("--seq " + seqLen + " is above the model's max_seq_len " + c.maxSeqLen());
        }
        if (!(lr > 0) || !Double.isFinite(lr)) {
            throw new ModException("--lr must be a positive number, got " + lr);
        }
        // written so that NaN fails too
        if (warmup < 0 || predictorDim < 0 || !(weightDecay >= 0 && weightDecay < Double.POSITIVE_INFINITY)
                || !(clip >= 0 && clip < Double.POSITIVE_INFINITY) || !(auxRouter >= 0 && auxRouter < Double.POSITIVE_INFINITY)
                || !(auxPredictor >= 0 && auxPredictor < Double.POSITIVE_INFINITY) || !(minLrRatio >= 0 && minLrRatio <= 1)) {
            throw new ModException("--warmup, --predictor-dim, --weight-decay, --clip and the auxiliary weights must be finite and "
                    + ">= 0, --min-lr-ratio in [0, 1]");
        }
    }

    private static void positive(String option, int value) {
        if (value < 1) {
            throw new ModException(option + " must be at least 1, got " + value);
        }
    }

    public ModelConfig config() {
        return ModelConfig.fromJson(modelConfig.toString());
    }

    public String toJson() {
        try {
            return JSON.writeValueAsString(this);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The first setting (in JSON order) whose value differs from the other's, as "name: A here, B there"; null when none. */
    public String firstDifference(TrainSettings other, String here, String there) {
        return StrictJson.firstDifference(JSON.valueToTree(this), JSON.valueToTree(other), here, there);
    }

    public static TrainSettings fromJson(String json) {
        return StrictJson.read(JSON, json, TrainSettings.class, "unreadable training settings");
    }
}
