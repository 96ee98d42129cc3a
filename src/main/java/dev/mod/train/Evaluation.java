package dev.mod.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mod.data.TrainingData;
import dev.mod.model.ModelConfig;

import java.util.List;

/** A run's evaluation on the held-out batches, as the log line that records it. */
final class Evaluation {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Evaluation() {
    }

    /**
     * Mean cross-entropy over the held-out batches, each routed layer's causal agreement with top-k (router
     * and predictor), and for tasks with a known answer the answer accuracy and the routers' precision on
     * the tokens that matter (against chance: the share of such tokens).
     */
    static JsonNode evaluate(TrainingPass plan, TrainSettings s, TrainingData data, long step, double flops) {
        ModelConfig config = s.config();
        int b = s.batch();
        int t = s.seqLen();
        int[][] input = new int[b][t];
        int[][] target = new int[b][t];
        double loss = 0;
        List<Integer> routed = config.routedLayers();
        double[] router = new double[routed.size()];
        double[] predictor = new double[routed.size()];
        double[] precision = new double[routed.size()];
        long importantTokens = 0;
        long answers = 0;
        long correct = 0;
        boolean[] answerMask = data.answers();
        for (int i = 0; i < s.evalBatches(); i++) {
            data.heldOut(i, input, target);
            plan.forward(input, target, -1 - i); // negative draws: never a training step's
            loss += plan.crossEntropy();
            boolean[][] important = data.important(i, b, t);
            for (int j = 0; j < routed.size(); j++) {
                router[j] += plan.agreement(routed.get(j), false);
                predictor[j] += plan.agreement(routed.get(j), true);
                if (important != null) {
                    int[] sel = plan.selected(routed.get(j));
                    int k = sel.length / b;
                    int hits = 0;
                    for (int row = 0; row < b; row++) {
                        for (int q = 0; q < k; q++) {
                            hits += important[row][sel[row * k + q]] ? 1 : 0;
                        }
                    }
                    precision[j] += (double) hits / sel.length;
                }
            }
            if (important != null) {
                for (boolean[] row : important) {
                    for (boolean mark : row) {
                        importantTokens += mark ? 1 : 0;
                    }
                }
            }
            if (answerMask != null) {
                for (int row = 0; row < b; row++) {
                    for (int pos = 0; pos < t; pos++) {
                        if (answerMask[pos]) {
                            answers++;
                            correct += plan.argmax(row * t + pos) == target[row][pos] ? 1 : 0;
                        }
                    }
                }
            }
        }
        int n = s.evalBatches();
        ObjectNode line = JSON.createObjectNode();
        line.put("step", step);
        line.put("eval_loss", loss / n);
        line.put("train_flops", flops);
        if (!routed.isEmpty()) {
            ObjectNode r = line.putObject("router_agreement");
            ObjectNode p = plan.predictorDim() > 0 ? line.putObject("predictor_agreement") : null;
            for (int j = 0; j < routed.size(); j++) {
                r.put(routed.get(j).toString(), router[j] / n);
                if (p != null) {
                    p.put(routed.get(j).toString(), predictor[j] / n);
                }
            }
        }
        if (answerMask != null) {
            line.put("answer_accuracy", (double) correct / answers);
        }
        if (importantTokens > 0 && !routed.isEmpty()) {
            ObjectNode pr = line.putObject("router_precision");
            for (int j = 0; j < routed.size(); j++) {
                pr.put(routed.get(j).toString(), precision[j] / n);
            }
            line.put("router_precision_chance", (double) importantTokens / ((long) n * b * t));
        }
        return line;
    }
}
