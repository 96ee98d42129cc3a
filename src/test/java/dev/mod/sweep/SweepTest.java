package dev.mod.sweep;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mod.ModException;
import dev.mod.backend.Backend;
import dev.mod.backend.Backends;
import dev.mod.data.TextData;
import dev.mod.io.ModelFile;
import dev.mod.model.Experts;
import dev.mod.model.Model;
import dev.mod.model.ModelCost;
import dev.mod.plan.RoutingRule;
import dev.mod.train.Trainer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** A micro sweep end to end (seconds), resuming, shards merged, the step rule, the parabola fit and the refusals. */
class SweepTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    static Path shared;
    private static Path text;

    @BeforeAll
    static void writeText() throws IOException {
        // words drawn from a small vocabulary: learnable, so the losses move, and never the same twice
        String[] words = {"public", "static", "void", "int", "return", "class", "final", "new", "if", "for", "(", ")", "{", "}", ";"};
        Random random = new Random(7);
        StringBuilder s = new StringBuilder();
        while (s.length() < 40_000) {
            s.append(words[random.nextInt(words.length)]).append(random.nextInt(5) == 0 ? "\n" : " ");
        }
        text = shared.resolve("text.txt");
        Files.writeString(text, s.toString());
    }

    private static SweepSpec spec(List<Double> budgets, SweepSpec.Ablation ablation, int minSteps) {
        return new SweepSpec(text.toString(), 1 << 20, 16, 2, 3, 1, budgets,
                List.of(new SweepSpec.Size("a", 16, 2, 2, 32), new SweepSpec.Size("b", 24, 2, 2, 48),
                        new SweepSpec.Size("c", 32, 2, 2, 64)),
                0.25, 4, false, 3e-3, Map.of(), 16, 0.1, 0.1, 0.1, 1.0, 0.01, 1.0, 2, minSteps, ablation);
    }

    private static SweepSpec micro() {
        return spec(List.of(1e8, 2e8), new SweepSpec.Ablation(1e8, "b", List.of(0.5), false, true, true), 5);
    }

    private static final Sweep.Listener QUIET = new Sweep.Listener() {
        @Override
        public void runStarted(SweepRun run, int number, int of, boolean resumed) {
        }

        @Override
        public void step(Trainer.Progress progress) {
        }

        @Override
        public void runFinished(SweepRun run, SweepResult result) {
        }
    };

    /** The measured numbers of a result, without the timings (which differ from run to run). */
    private static List<Object> numbers(SweepResult r) {
        List<Object> n = new ArrayList<>();
        n.add(r.name());
        n.add(r.steps());
        n.add(r.evalLoss());
        n.add(r.evalLossRouter());
        n.add(r.evalLossPredictor());
        n.add(r.routedFractionRouter());
        n.add(r.routerAgreement());
        n.add(r.predictorAgreement());
        return n;
    }

    private static List<List<Object>> numbers(List<SweepResult> results) {
        return results.stream().map(SweepTest::numbers).toList();
    }

    private static List<SweepResult> complete;

    private static synchronized List<SweepResult> completeSweep() {
        if (complete == null) {
            complete = new Sweep(micro(), shared.resolve("complete"), 2).run(Sweep.Shard.ALL, QUIET);
        }
        return complete;
    }

    @Test
    void theCommittedSweepsSpecWrittenBeforeTheGaussianControlStillReads() throws IOException {
        Path committed = Path.of("results/sweep-dev-machine/spec.json");
        SweepSpec spec = SweepSpec.fromJson(Files.readString(committed), committed.toString());
        assertFalse(spec.ablation().gaussian(), "a spec without the field ran no Gaussian control");
        assertEquals(SweepSpec.defaults(), spec, "the built-in sweep is the committed one, so that it resumes there");
    }

    @Test
    void thePaperSpecIsDeepAndBracketsEachBudgetsOptimum() {
        SweepSpec paper = SweepSpec.paper();
        assertEquals(paper, SweepSpec.fromJson(paper.toJson(), "paper"));
        assertEquals(paper, Sweep.readSpec(Path.of("results/sweep-paper-dev-machine")), "the committed paper sweep's spec, so that it resumes there");
        assertEquals("jdk-src-files", paper.data());
        assertTrue(paper.seeds() == 2 && paper.countPredictorFlops() && paper.ablation().gaussian());
        for (SweepSpec.Size size : paper.sizes()) {
            assertTrue(size.nLayers() >= 6 && size.nLayers() <= 8, size.name());
            assertEquals(size.nLayers() / 2, paper.config(size).routedLayers().size(), "every other block routed");
        }
        List<SweepRun> plan = SweepRun.plan(paper);
        for (double budget : paper.budgets()) {
            int sizes = budget == 1e14 ? 5 : 4;
            assertEquals(sizes * 2 * 2, plan.stream().filter(r -> r.budget() == budget && !r.variant().startsWith("mod-")).count(),
                    budget + ": four sizes (five at 1e14), dense and MoD, two seeds");
            // 20 tokens a parameter: training FLOPs 6 N D = 120 N^2
            double rule = Math.sqrt(budget / 120);
            long smallest = plan.stream().filter(r -> r.budget() == budget).mapToLong(SweepRun::params).min().orElseThrow();
            long largest = plan.stream().filter(r -> r.budget() == budget).mapToLong(SweepRun::params).max().orElseThrow();
            assertTrue(smallest < rule / 1.4 && rule * 2.5 < largest, budget + ": " + smallest + " < " + rule + " < " + largest);
        }
        // MoD at 50% capacity at every size of 1e13 and 3.16e13, the ablation's d96-l6 run its point at 3.16e13
        assertEquals(new SweepSpec.CapacityCurves(List.of(1e13, 3.16e13), List.of(0.5)), paper.capacityCurves());
        assertEquals(2 * (4 + 4), plan.stream().filter(r -> r.variant().equals("mod-c0.5")).count());
        assertEquals(62 + 2 * (4 + 3), plan.size(), "the 62 runs of the issue's spec and the curves' new ones");
        // the evaluation covers the held-out tenth of the 8 MB: 400 batches of 16 windows of 128 bytes
        assertTrue(paper.evalBatches() * paper.batch() * paper.seqLen() >= paper.maxDataBytes() / 10);
    }

    @Test
    void microSweepEndToEnd() throws IOException {
        SweepSpec spec = micro();
        List<SweepResult> results = completeSweep();
        List<SweepRun> plan = SweepRun.plan(spec);
        assertEquals(3 * 2 * 2 + 3, plan.size(), "3 sizes x 2 variants x 2 budgets + 3 ablations");
        assertEquals(plan.stream().map(SweepRun::name).toList(), results.stream().map(SweepResult::name).toList());
        for (SweepResult r : results) {
            assertTrue(Double.isFinite(r.evalLoss()) && r.evalLoss() < Math.log(258), r.name() + " learned something: " + r.evalLoss());
            boolean learnedMod = r.capacity() != null && r.routing().equals("learned");
            assertEquals(learnedMod, r.evalLossRouter() != null, r.name());
            assertEquals(learnedMod, r.evalLossPredictor() != null, r.name());
            if (learnedMod) {
                // the causal rules route about the capacity they were trained to agree with, and cost little
                assertTrue(Math.abs(r.evalLossRouter() - r.evalLoss()) < 0.5, r.name());
                assertTrue(r.routerAgreement() > 0.5, r.name());
            }
            assertTrue(Files.exists(shared.resolve("complete/runs").resolve(r.name()).resolve("model.safetensors")));
        }
        SweepResult stochastic = results.stream().filter(r -> r.variant().equals("mod-stochastic")).findFirst().orElseThrow();
        assertEquals("stochastic", stochastic.routing());
        SweepResult learned = results.stream().filter(r -> r.name().equals("b1e8-b-mod")).findFirst().orElseThrow();
        assertEquals(learned.steps(), stochastic.steps(), "same model, same FLOPs per step");
        assertNotEquals(learned.evalLoss(), stochastic.evalLoss(), "the choices differ");
        SweepResult gaussian = results.stream().filter(r -> r.variant().equals("mod-gaussian")).findFirst().orElseThrow();
        assertEquals("gaussian", gaussian.routing());
        assertEquals(learned.steps(), gaussian.steps());
        assertNotEquals(stochastic.evalLoss(), gaussian.evalLoss(), "the two controls differ");

        // the report: every run in sweep.json and runs.csv, the plots, and a table naming each budget's optimum
        Path dir = shared.resolve("complete");
        SweepReport report = SweepReport.of(List.of(dir));
        String table = written(report, dir);
        JsonNode json = JSON.readTree(dir.resolve("sweep.json").toFile());
        assertEquals(results.size(), json.get("runs").size());
        assertEquals(0, json.get("missing").size());
        assertEquals(results.size() + 1, Files.readAllLines(dir.resolve("runs.csv")).size());
        for (String png : SweepPlots.FILES) {
            assertTrue(Files.size(dir.resolve(png)) > 1000, png);
        }
        for (JsonNode b : json.get("budgets")) {
            double budget = b.get("budget").asDouble();
            SweepResult best = results.stream().filter(r -> r.isoFlop() && r.dense() && r.budget() == budget)
                    .min((x, y) -> Double.compare(x.evalLoss(), y.evalLoss())).orElseThrow();
            assertEquals(best.name(), b.get("dense").get("best_run").asText());
            assertEquals(b.get("mod").get("eval_loss").asDouble() - best.evalLoss(), b.get("loss_difference").asDouble(), 1e-12);
            assertTrue(b.get("dense").has("fit"), "three sizes: a parabola");
            SweepReport.Point dense = report.optimum(budget, true).best();
            SweepReport.Point mod = report.optimum(budget, false).best();
            assertEquals(mod.stepMs() / dense.stepMs(), b.get("step_time_ratio").asDouble(), 1e-12);
            SweepReport.Point rival = report.wallClockRival(budget, false);
            if (rival != null) {
                assertTrue(rival.run().dense() && rival.seconds() <= mod.seconds(), "a dense run that trained no longer");
                assertEquals(mod.loss() - rival.loss(), b.get("wall_clock_loss_difference").asDouble(), 1e-12);
                assertTrue(report.points().stream().noneMatch(p -> p.run().isoFlop() && p.run().dense()
                        && p.seconds() <= mod.seconds() && p.loss() < rival.loss()), "the best such run");
            }
        }
        assertTrue(table.contains("1e8") && table.contains("2e8") && table.contains("mod-stochastic"), table);
    }

    @Test
    void seedsTrainEveryRunOnceEachAndTheReportAveragesThem() throws IOException {
        SweepSpec one = spec(List.of(1e8), null, 5);
        SweepSpec spec = new SweepSpec(one.data(), one.maxDataBytes(), one.seqLen(), one.batch(), 3, 2, one.budgets(), one.sizes(),
                one.capacity(), one.predictorDim(), false, one.lr(), one.lrMultipliers(), one.lrReferenceDim(), one.warmupFraction(), one.minLrRatio(),
                one.weightDecay(), one.clip(), one.auxRouter(), one.auxPredictor(), one.evalBatches(), one.minSteps(), null);
        List<SweepRun> plan = SweepRun.plan(spec);
        assertEquals(2 * SweepRun.plan(one).size(), plan.size());
        assertEquals("b1e8-a-dense-s3", plan.getFirst().name(), "seed by seed, each run named by its seed");
        assertEquals("b1e8-a-dense-s4", plan.get(plan.size() / 2).name());
        assertEquals(4, plan.get(plan.size() / 2).settings(spec).seed());
        assertEquals("b1e8-a-dense", SweepRun.plan(one).getFirst().name(), "one seed: the names of a sweep without seeds");

        Path dir = shared.resolve("seeds");
        List<SweepResult> results = new Sweep(spec, dir, 2).run(Sweep.Shard.ALL, QUIET);
        SweepReport report = SweepReport.of(List.of(dir));
        List<SweepReport.Point> curve = report.curve(1e8, true);
        assertEquals(3, curve.size());
        for (SweepReport.Point p : curve) {
            List<Double> losses = results.stream().filter(r -> r.variant().equals("dense") && r.size().equals(p.run().size()))
                    .map(SweepResult::evalLoss).toList();
            assertEquals(2, losses.size());
            assertNotEquals(losses.get(0), losses.get(1), "another seed, another run");
            assertEquals(2, p.seeds());
            assertEquals((losses.get(0) + losses.get(1)) / 2, p.loss(), 1e-12);
            assertEquals(Math.min(losses.get(0), losses.get(1)), p.low());
            assertEquals(Math.max(losses.get(0), losses.get(1)), p.high());
        }
        SweepReport.Point best = curve.stream().min((x, y) -> Double.compare(x.loss(), y.loss())).orElseThrow();
        assertEquals(best, report.optimum(1e8, true).best(), "the optimum is the lowest mean");
        IsoFlopFit onMeans = IsoFlopFit.of(curve.stream().mapToDouble(SweepReport.Point::params).toArray(),
                curve.stream().mapToDouble(SweepReport.Point::loss).toArray());
        assertEquals(onMeans.a(), report.optimum(1e8, true).fit().a(), 1e-12, "the fit is on the means");
        String text = written(report, dir);
        assertTrue(text.contains("losses are means over the seeds trained (up to 2)"), text);
        assertTrue(text.contains(String.format(Locale.ROOT, "dense %s %.4f-%.4f (2 seeds)", best.run().size(), best.low(), best.high())), text);
        for (SweepReport.Point p : curve) {
            String row = curvesRow(text, p.run().size());
            assertTrue(row.contains(String.format(Locale.ROOT, " %.4f%s (%.4f-%.4f) ", p.loss(), p.equals(best) ? "*" : "", p.low(), p.high())),
                    "each point of the curves table: its mean, the best starred, and its seeds' spread: " + row);
        }
        JsonNode dense = JSON.readTree(dir.resolve("sweep.json").toFile()).get("budgets").get(0).get("dense");
        assertEquals(2, dense.get("seeds").asInt());
        assertEquals(best.low(), dense.get("eval_loss_low").asDouble(), 1e-12);

        Path firstSeed = shared.resolve("seeds-first-only");
        Files.createDirectories(firstSeed.resolve("runs"));
        Files.copy(dir.resolve("spec.json"), firstSeed.resolve("spec.json"));
        List<SweepRun> firstHalf = plan.subList(0, plan.size() / 2);
        SweepRun unfinished = firstHalf.stream().filter(r -> r.variant().equals("mod")).reduce((a, b) -> b).orElseThrow();
        for (SweepRun run : firstHalf.stream().filter(r -> r != unfinished).toList()) {
            Path runDir = Files.createDirectories(firstSeed.resolve("runs").resolve(run.name()));
            for (String file : List.of("result.json", "settings.json")) {
                Files.copy(dir.resolve("runs").resolve(run.name()).resolve(file), runDir.resolve(file));
            }
        }
        SweepReport half = SweepReport.of(List.of(firstSeed));
        SweepReport.Point bestOfFirst = half.optimum(1e8, true).best();
        assertEquals(1, bestOfFirst.seeds());
        ByteArrayOutputStream halfPrinted = new ByteArrayOutputStream();
        half.write(firstSeed, new PrintStream(halfPrinted, true, StandardCharsets.UTF_8));
        String halfText = halfPrinted.toString(StandardCharsets.UTF_8);
        assertTrue(halfText.contains(String.format(Locale.ROOT, "dense %s %.4f (1 seed)", bestOfFirst.run().size(), bestOfFirst.loss())),
                "a seed not trained yet: one loss, not a range: " + halfText);
        String row = curvesRow(halfText, unfinished.size().name());
        assertTrue(row.contains(" (1 of 2 seeds) ") && row.endsWith(" not yet"),
                "the dense point on one of two seeds, the MoD point with none finished: " + row);
    }

    // the report's row of the isoFLOP curves table for a size at the budget 1e8
    private static String curvesRow(String report, String size) {
        return curvesRow(report, "1e8", size);
    }

    // the report's row of the isoFLOP curves table for a size at a budget
    private static String curvesRow(String report, String budget, String size) {
        String start = String.format(Locale.ROOT, "  %-9s %-8s ", budget, size);
        String tail = report.substring(report.indexOf("isoFLOP curves:"));
        return tail.lines().filter(l -> l.startsWith(start)).findFirst().orElseThrow(() -> new AssertionError("no row for " + size + ": " + report));
    }

    /**
     * The mixture-of-experts variants at one budget: each size as moe (capacity 1 / count: the dense feed-forward's FLOPs),
     * moe-reduced, mode-integrated (the same FLOPs, with no-op experts) and mode-staged (MoD around moe's experts); the
     * budget spent by each, and the report's comparison table, sweep.json entries and plot.
     */
    @Test
    void expertVariantsAreTrainedAtTheirBudgetAndCompared() throws IOException {
        SweepSpec one = spec(List.of(1e8, 2e8), null, 5);
        SweepSpec.ExpertVariants experts = new SweepSpec.ExpertVariants(1e8, 2, 1, 0.25);
        SweepSpec spec = withVariants(one, Map.of("moe", 2.0), experts, null);
        assertEquals(spec, SweepSpec.fromJson(spec.toJson(), "spec"));
        List<SweepRun> plan = SweepRun.plan(spec);
        assertEquals(SweepRun.plan(one).size() + 3 * 4, plan.size());
        SweepRun moe = plan.stream().filter(r -> r.name().equals("b1e8-b-moe")).findFirst().orElseThrow();
        SweepRun reduced = plan.stream().filter(r -> r.name().equals("b1e8-b-moe-reduced")).findFirst().orElseThrow();
        SweepRun integrated = plan.stream().filter(r -> r.name().equals("b1e8-b-mode-integrated")).findFirst().orElseThrow();
        SweepRun staged = plan.stream().filter(r -> r.name().equals("b1e8-b-mode-staged")).findFirst().orElseThrow();
        SweepRun dense = plan.stream().filter(r -> r.name().equals("b1e8-b-dense")).findFirst().orElseThrow();
        assertEquals(new Experts(2, 0, 0.5, 48), moe.config().experts());
        assertTrue(moe.config().routedLayers().isEmpty() && integrated.config().routedLayers().isEmpty());
        assertEquals(new Experts(2, 0, 0.25, 48), reduced.config().experts());
        assertEquals(new Experts(2, 1, 0.25, 48), integrated.config().experts());
        assertEquals(spec.config(spec.size("b")).routedLayers(), staged.config().routedLayers());
        assertEquals(moe.config().experts(), staged.config().experts());
        // a token through one expert on average: moe's feed-forward FLOPs are dense's and the router's
        double routerFlops = 2.0 * 24 * 2 * 2; // 2 d FLOPs a token for each of 2 experts, in 2 layers
        assertEquals(dense.feedForwardFlopsPerToken(spec.seqLen()) + routerFlops, moe.feedForwardFlopsPerToken(spec.seqLen()), 1e-9);
        assertEquals(reduced.feedForwardFlopsPerToken(spec.seqLen()), integrated.feedForwardFlopsPerToken(spec.seqLen()) - 2.0 * 24 * 2, 1e-9,
                "the no-op expert's router row, and nothing else");
        assertTrue(staged.steps() > moe.steps() && reduced.steps() > moe.steps(), "fewer FLOPs a step, more steps");
        assertEquals(2 * dense.lr(), moe.lr(), 1e-15, "moe's own multiplier");
        assertEquals(dense.lr(), integrated.lr(), 1e-15, "no multiplier of its own and no routed block: dense's");
        for (SweepRun r : plan) {
            assertEquals(r.budget(), r.trainingFlopsPerStep(spec) * r.steps(), r.trainingFlopsPerStep(spec) / 2 + 1, r.name());
        }

        Path dir = shared.resolve("experts");
        new Sweep(spec, dir, 2).run(Sweep.Shard.ALL, QUIET);
        SweepReport report = SweepReport.of(List.of(dir));
        String table = written(report, dir);
        assertTrue(table.contains("mixtures of experts at 1e8: 2 experts"), table);
        assertTrue(table.contains("staged MoDE against MoE") && table.contains("integrated MoDE against MoE"), table);
        JsonNode json = JSON.readTree(dir.resolve("sweep.json").toFile()).get("experts");
        for (String variant : SweepReport.EXPERT_COMPARISON) {
            SweepReport.Point best = report.expertOptimum(variant);
            assertEquals(best.loss(), json.get(variant).get("eval_loss").asDouble(), 1e-12, variant);
            assertEquals(3, report.expertCurve(variant).size(), variant);
        }
        assertEquals(1.0, json.get("dense").get("feed_forward_flops_per_token").asDouble()
                / report.feedForwardFlops(report.expertOptimum("dense")), 1e-12);
        assertTrue(Files.size(dir.resolve("experts.png")) > 0);
        assertTrue(report.ablation().isEmpty());
    }

    @Test
    void capacityCurvesTrainEverySizeOfTheirBudgetsAndTheReportComparesTheirOptima() throws IOException {
        SweepSpec one = spec(List.of(1e8, 2e8), new SweepSpec.Ablation(1e8, "b", List.of(0.5), false, false, false), 5);
        SweepSpec spec = withVariants(one, one.lrMultipliers(), null, new SweepSpec.CapacityCurves(List.of(1e8), List.of(0.5)));
        assertEquals(spec, SweepSpec.fromJson(spec.toJson(), "spec"));
        assertFalse(one.toJson().contains("capacity_curves"), "a spec without curves is written as before the field existed");
        assertEquals(one, SweepSpec.fromJson(one.toJson(), "spec"), "and reads back without curves");
        List<SweepRun> plan = SweepRun.plan(spec);
        assertEquals(SweepRun.plan(one).size() + 2, plan.size(), "sizes a and c; b's point is the ablation's run");
        assertEquals(plan.size(), plan.stream().map(SweepRun::name).distinct().count(), "every run once");
        List<SweepRun> curve = plan.stream().filter(r -> r.variant().equals("mod-c0.5")).toList();
        assertEquals(List.of("b1e8-b-mod-c0.5", "b1e8-a-mod-c0.5", "b1e8-c-mod-c0.5"), curve.stream().map(SweepRun::name).toList());
        for (SweepRun r : curve) {
            assertEquals(0.5, r.config().capacity());
            assertEquals(spec.config(r.size()).routedLayers(), r.config().routedLayers(), "every other block, as MoD");
        }

        Path dir = shared.resolve("capacity-curves");
        new Sweep(spec, dir, 2).run(Sweep.Shard.ALL, QUIET);
        SweepReport report = SweepReport.of(List.of(dir));
        String text = written(report, dir);
        SweepReport.Optimum half = report.optimum(1e8, "mod-c0.5");
        SweepReport.Optimum dense = report.optimum(1e8, true);
        SweepReport.Optimum mod = report.optimum(1e8, false);
        assertEquals(3, report.curve(1e8, "mod-c0.5").size());
        assertEquals(report.curve(1e8, "mod-c0.5").stream().min(Comparator.comparingDouble(SweepReport.Point::loss)).orElseThrow(), half.best());
        assertTrue(text.contains(String.format(Locale.ROOT, "  1e8       mod-c0.5   %-8s %8s %9.3g %7.4f | dense %+.4f, MoD %+.4f | fwd x dense %.3f",
                half.best().run().size(), SweepReport.millions(half.best().params()), half.best().forwardFlops(), half.best().loss(),
                half.best().loss() - dense.best().loss(), half.best().loss() - mod.best().loss(),
                half.best().forwardFlops() / dense.best().forwardFlops())), text);
        assertEquals(List.of(), report.capacityVariants(2e8));
        for (SweepReport.Point p : report.curve(1e8, "mod-c0.5")) {
            assertTrue(curvesRow(text, "1e8", p.run().size()).endsWith(String.format(Locale.ROOT, " %.4f%s", p.loss(), p.equals(half.best()) ? "*" : "")),
                    "the curve's column, its best starred: " + text);
        }
        assertTrue(curvesRow(text, "2e8", "b").endsWith(" -"), "no curve at 2e8: " + text);
        JsonNode budgets = JSON.readTree(dir.resolve("sweep.json").toFile()).get("budgets");
        JsonNode at1e8 = budgets.get(0).get("capacities").get(0);
        assertEquals("mod-c0.5", at1e8.get("variant").asText());
        assertEquals(half.best().run().name(), at1e8.get("optimum").get("best_run").asText());
        assertEquals(half.best().loss() - dense.best().loss(), at1e8.get("loss_difference").asDouble(), 1e-12);
        assertFalse(budgets.get(1).has("capacities"));

        assertRefused("capacity_curves.budgets must list some of the sweep's budgets",
                () -> withVariants(one, one.lrMultipliers(), null, new SweepSpec.CapacityCurves(List.of(3e8), List.of(0.5))));
        assertRefused("capacity_curves.capacities must list at least one capacity",
                () -> withVariants(one, one.lrMultipliers(), null, new SweepSpec.CapacityCurves(List.of(1e8), List.of())));
        assertRefused("capacity_curves.capacities: 0.25 is the sweep's capacity",
                () -> withVariants(one, one.lrMultipliers(), null, new SweepSpec.CapacityCurves(List.of(1e8), List.of(0.25))));
        assertRefused("capacity_curves.capacities must be in (0, 1), got 1.0",
                () -> withVariants(one, one.lrMultipliers(), null, new SweepSpec.CapacityCurves(List.of(1e8), List.of(1.0))));
    }

    // writes the report into dir and returns what it printed
    private static String written(SweepReport report, Path dir) {
        ByteArrayOutputStream printed = new ByteArrayOutputStream();
        report.write(dir, new PrintStream(printed, true, StandardCharsets.UTF_8));
        return printed.toString(StandardCharsets.UTF_8);
    }

    // the spec s with other learning-rate multipliers, experts and capacity curves
    private static SweepSpec withVariants(SweepSpec s, Map<String, Double> lrMultipliers, SweepSpec.ExpertVariants experts,
                                          SweepSpec.CapacityCurves curves) {
        return new SweepSpec(s.data(), s.maxDataBytes(), s.seqLen(), s.batch(), s.seed(), s.seeds(), s.budgets(), s.sizes(),
                s.capacity(), s.predictorDim(), s.countPredictorFlops(), s.lr(), lrMultipliers, s.lrReferenceDim(),
                s.warmupFraction(), s.minLrRatio(), s.weightDecay(), s.clip(), s.auxRouter(), s.auxPredictor(), s.evalBatches(),
                s.minSteps(), s.ablation(), experts, curves);
    }

    @Test
    void causalEvaluationOfADenseModelIsItsTopKEvaluation() {
        // a dense model has nothing to route: the evaluator's causal pass must give the trainer's held-out loss
        SweepSpec spec = micro();
        SweepResult dense = completeSweep().get(0);
        Path model = shared.resolve("complete/runs").resolve(dense.name()).resolve("model.safetensors");
        try (Model m = ModelFile.load(model); Backend cpu = Backends.cpu(2)) {
            double[] loss = Sweep.causalLoss(m, RoutingRule.ROUTER,
                    TextData.open(text.toString(), spec.seqLen(), spec.maxDataBytes()), cpu, spec.batch(), spec.seqLen(),
                    spec.evalBatches());
            assertEquals(dense.evalLoss(), loss[0], 1e-4);
        }
    }

    @Test
    void aSweepIntoTheRootOfAFileSystemIsRefusedBeforeAnythingIsWritten() {
        ModException e = assertThrows(ModException.class, () -> new Sweep(micro(), Path.of("/"), 1).run(Sweep.Shard.ALL, QUIET));
        assertTrue(e.getMessage().contains("/ is the root of a file system: give the sweep a folder of its own"), e.getMessage());
        assertTrue(!Files.exists(Path.of("/spec.json")) && !Files.exists(Path.of("/runs")), "nothing written into /");
    }

    @Test
    void aStoppedSweepResumesToTheSameResults() {
        Path dir = shared.resolve("stopped");
        Sweep sweep = new Sweep(micro(), dir, 2);
        // stop in the middle of the fourth run, after its first checkpoint
        String victim = SweepRun.plan(micro()).get(3).name();
        RuntimeException stop = new RuntimeException("stopped");
        Sweep.Listener stopping = new Sweep.Listener() {
            private String current;

            @Override
            public void runStarted(SweepRun run, int number, int of, boolean resumed) {
                current = run.name();
            }

            @Override
            public void step(Trainer.Progress progress) {
                if (current.equals(victim) && progress.step() == 12) {
                    throw stop;
                }
            }

            @Override
            public void runFinished(SweepRun run, SweepResult result) {
            }
        };
        assertEquals(stop, assertThrows(RuntimeException.class, () -> sweep.run(Sweep.Shard.ALL, stopping)));
        assertTrue(Files.exists(dir.resolve("runs").resolve(victim).resolve("checkpoint.safetensors")));
        assertNull(SweepResult.read(dir.resolve("runs").resolve(victim)));
        List<String> started = new ArrayList<>();
        List<SweepResult> resumed = new Sweep(micro(), dir, 1).run(Sweep.Shard.ALL, new Sweep.Listener() {
            @Override
            public void runStarted(SweepRun run, int number, int of, boolean wasResumed) {
                if (!wasResumed) {
                    started.add(run.name());
                }
            }

            @Override
            public void step(Trainer.Progress progress) {
            }

            @Override
            public void runFinished(SweepRun run, SweepResult result) {
            }
        });
        assertEquals(numbers(completeSweep()), numbers(resumed), "bit for bit, on another thread count");
        assertTrue(!started.contains(victim) && started.size() == completeSweep().size() - 4,
                "finished runs skipped, the stopped one resumed: " + started);
    }

    @Test
    void stepTimesOfOneSittingReplaceTheRunsOwnInTheWallClockComparison() throws IOException {
        completeSweep();
        Path dir = shared.resolve("timed");
        Files.createDirectories(dir);
        Files.copy(shared.resolve("complete/spec.json"), dir.resolve("spec.json"));
        for (SweepResult r : completeSweep()) {
            Files.createDirectories(dir.resolve("runs").resolve(r.name()));
            for (String file : List.of(SweepResult.FILE, "settings.json")) {
                Files.copy(shared.resolve("complete/runs").resolve(r.name()).resolve(file), dir.resolve("runs").resolve(r.name()).resolve(file));
            }
        }
        SweepSpec spec = Sweep.readSpec(dir);
        List<String> lines = new ArrayList<>();
        StepTimes times = StepTimes.measure(spec, dir, 5, 2, 1, "cpu", Backends.cpu(1).training(), lines::add);
        times.write(dir);
        // every isoFLOP setting (3 sizes x dense and MoD; a step's time does not depend on the budget) timed in each round
        assertEquals(6, times.stepMs().size());
        assertEquals(12, lines.size());
        times.stepMs().values().forEach(rounds -> {
            assertEquals(2, rounds.size());
            rounds.forEach(ms -> assertTrue(ms > 0 && Double.isFinite(ms)));
        });
        try (var left = Files.list(dir)) {
            assertEquals(List.of("runs", "spec.json", StepTimes.FILE), left.map(p -> p.getFileName().toString()).sorted().toList(),
                    "the scratch runs are gone");
        }
        assertEquals(times, StepTimes.read(dir));

        SweepReport report = SweepReport.of(List.of(dir));
        String text = written(report, dir);
        JsonNode json = JSON.readTree(dir.resolve("sweep.json").toFile());
        assertEquals(StepTimes.FILE, json.get("wall_clock_times").asText());
        for (JsonNode b : json.get("budgets")) {
            double budget = b.get("budget").asDouble();
            SweepReport.Point dense = report.optimum(budget, true).best();
            SweepReport.Point mod = report.optimum(budget, false).best();
            double denseMs = times.ms("dense", dense.run().size());
            double modMs = times.ms("mod", mod.run().size());
            assertNotEquals(dense.stepMs(), denseMs, "the sitting's time, not the run's");
            assertEquals(modMs / denseMs, b.get("step_time_ratio").asDouble(), 1e-12);
            assertEquals(mod.run().steps() * modMs / (dense.run().steps() * denseMs), b.get("train_time_ratio").asDouble(), 1e-12);
            SweepReport.Point rival = report.wallClockRival(budget, false);
            double modSeconds = mod.run().steps() * modMs / 1000;
            assertTrue(rival == null || report.seconds(rival) <= modSeconds);
            for (SweepReport.Point p : report.points()) {
                if (p.run().isoFlop() && p.run().dense()) {
                    double seconds = p.run().steps() * times.ms("dense", p.run().size()) / 1000;
                    assertEquals(seconds, report.seconds(p), 1e-12);
                    assertTrue(seconds > modSeconds || (rival != null && rival.loss() <= p.loss()), "the rival is the best dense "
                            + "run that trained no longer at the sitting's times: " + p.run().name());
                }
            }
        }
        // a sitting that did not time a setting (a size added after it): that setting's points, with their runs' own
        // times, are left out of the wall-clock comparison
        Map<String, List<Double>> partial = new java.util.LinkedHashMap<>(times.stepMs());
        partial.remove(StepTimes.key("dense", "a"));
        new StepTimes(times.steps(), times.rounds(), times.threads(), times.backend(), times.environment(), partial).write(dir);
        SweepReport partly = SweepReport.of(List.of(dir));
        for (SweepReport.Point p : partly.points()) {
            boolean timed = p.run().isoFlop() && !(p.run().dense() && p.run().size().equals("a")); // a sitting times dense and MoD
            assertEquals(timed, partly.timedAlike(p), p.run().name());
        }
        for (double budget : spec.budgets()) {
            SweepReport.Point rival = partly.wallClockRival(budget, false);
            assertTrue(rival == null || partly.timedAlike(rival), "no rival timed otherwise");
        }
        times.write(dir);
        assertTrue(text.contains("step times of one sitting, step_times.json: 2 rounds of 5 steps"));
        ModException few = assertThrows(ModException.class,
                () -> StepTimes.measure(spec, dir, 4, 1, 1, "cpu", Backends.cpu(1).training(), lines::add));
        assertTrue(few.getMessage().contains("at least 5 steps"), few.getMessage());
    }

    @Test
    void shardsMergedEqualTheWholeSweep() {
        Path a = shared.resolve("shard0");
        Path b = shared.resolve("shard1");
        List<SweepResult> first = new Sweep(micro(), a, 2).run(new Sweep.Shard(0, 2), QUIET);
        List<SweepResult> second = new Sweep(micro(), b, 2).run(Sweep.Shard.parse("1/2"), QUIET);
        assertEquals(completeSweep().size(), first.size() + second.size());
        assertTrue(first.stream().noneMatch(r -> second.stream().anyMatch(s -> s.name().equals(r.name()))));
        SweepReport one = SweepReport.of(List.of(a));
        assertEquals(second.size(), one.missing().size(), "a shard alone reports the other's runs as missing");
        SweepReport merged = SweepReport.of(List.of(a, b));
        assertEquals(List.of(), merged.missing());
        assertEquals(numbers(completeSweep()), numbers(merged.results()));
    }

    @Test
    void runsChosenByNameAreTheOnesTrainedAndEqualTheWholeSweeps() throws IOException {
        List<SweepRun> plan = SweepRun.plan(micro());
        String first = plan.get(0).name();
        String budget = first.substring(0, first.indexOf('-') + 1);
        String last = plan.get(plan.size() - 1).name();
        Sweep.RunNames names = Sweep.RunNames.parse(budget + "*-mod* , " + last);
        List<String> expected = plan.stream().map(SweepRun::name)
                .filter(n -> n.startsWith(budget) && n.contains("-mod") || n.equals(last)).toList();
        assertTrue(expected.size() >= 3 && expected.size() < plan.size(), expected.toString());

        Path dir = shared.resolve("chosen");
        Sweep sweep = new Sweep(micro(), dir, 2);
        assertEquals(expected, sweep.runs(Sweep.Shard.ALL, names).stream().map(SweepRun::name).toList());
        List<String> secondShard = new ArrayList<>();
        for (int i = 1; i < plan.size(); i += 2) {
            if (expected.contains(plan.get(i).name())) {
                secondShard.add(plan.get(i).name());
            }
        }
        assertEquals(secondShard, sweep.runs(new Sweep.Shard(1, 2), names).stream().map(SweepRun::name).toList());

        List<SweepResult> chosen = sweep.run(Sweep.Shard.ALL, names, QUIET);
        assertEquals(expected, chosen.stream().map(SweepResult::name).toList());
        try (var runs = Files.list(dir.resolve("runs"))) {
            assertEquals(expected.stream().sorted().toList(), runs.map(p -> p.getFileName().toString()).sorted().toList(),
                    "only the chosen runs have folders");
        }
        assertEquals(numbers(completeSweep().stream().filter(r -> expected.contains(r.name())).toList()), numbers(chosen));
        assertEquals(plan.size() - expected.size(), SweepReport.of(List.of(dir)).missing().size());

        assertEquals(List.of(plan.get(1).name()), sweep.runs(Sweep.Shard.ALL,
                Sweep.RunNames.parse(plan.get(1).name().replace('e', '?'))).stream().map(SweepRun::name).toList());
        assertRefused("--runs " + budget + "*-moe matches no run of the spec",
                () -> sweep.runs(Sweep.Shard.ALL, Sweep.RunNames.parse(last + "," + budget + "*-moe")));
        assertRefused("--runs needs run names or globs separated by commas", () -> Sweep.RunNames.parse(last + ",,"));
    }

    @Test
    void stepRuleSpendsTheBudget() {
        SweepSpec spec = micro();
        for (SweepRun run : SweepRun.plan(spec)) {
            double perStep = 3.0 * spec.batch() * ModelCost.forwardFlops(run.config(), spec.seqLen());
            assertEquals(Math.rint(run.budget() / perStep), run.steps(), run.name());
            assertTrue(Math.abs(run.steps() * perStep - run.budget()) <= perStep / 2, run.name());
            assertEquals(3e-3 * Math.sqrt(16.0 / run.config().dim()), run.lr(), 1e-15);
            assertEquals(Math.max(1, Math.round(0.1 * run.steps())), run.warmup());
            assertEquals(run.steps(), run.settings(spec).steps());
        }
        SweepRun dense = SweepRun.plan(spec).get(0);
        SweepRun mod = SweepRun.plan(spec).get(1);
        assertTrue(mod.steps() > dense.steps(), "a MoD step is cheaper, so it takes more of them");

        // counted, the predictor's training FLOPs are part of a MoD step's: 16 sequences x T x (4 P d + 6 P) per routed layer
        SweepSpec counted = SweepSpec.fromJson(spec.toJson().replace("\"count_predictor_flops\" : false",
                "\"count_predictor_flops\" : true"), "counted");
        for (SweepRun run : SweepRun.plan(counted)) {
            boolean predictor = run.settings(counted).predictorDim() > 0;
            double perStep = 3.0 * spec.batch() * ModelCost.forwardFlops(run.config(), spec.seqLen())
                    + (predictor ? spec.batch() * run.config().routedLayers().size() * spec.seqLen()
                    * (4.0 * spec.predictorDim() * run.config().dim() + 6.0 * spec.predictorDim()) : 0);
            assertEquals(Math.rint(run.budget() / perStep), run.steps(), run.name());
            assertEquals(predictor, run.variant().equals("mod") || run.variant().startsWith("mod-c") || run.variant().equals("mod-every-block"),
                    run.name() + ": learned MoD runs train a predictor, dense and the controls do not");
        }
        assertTrue(SweepRun.plan(counted).get(1).trainingFlopsPerStep(counted) > mod.trainingFlopsPerStep(spec),
                "the predictor's FLOPs are a MoD step's");
        assertEquals(dense.steps(), SweepRun.plan(counted).get(0).steps());

        // learning-rate multipliers by variant: an ablation takes mod's unless it has its own
        SweepSpec tuned = SweepSpec.fromJson(spec.toJson().replace("\"lr_multipliers\" : { }",
                "\"lr_multipliers\" : {\"dense\": 1.5, \"mod\": 2, \"mod-stochastic\": 0.5}"), "tuned");
        for (SweepRun run : SweepRun.plan(tuned)) {
            double m = switch (run.variant()) {
                case "dense" -> 1.5;
                case "mod-stochastic" -> 0.5;
                default -> 2;
            };
            assertEquals(m * 3e-3 * Math.sqrt(16.0 / run.config().dim()), run.lr(), 1e-15, run.name());
        }
        assertRefused("lr_multipliers names variants (dense, mod, mod-..., moe, moe-reduced, mode-integrated, mode-staged), not \"moe-big\"",
                () -> SweepSpec.fromJson(spec.toJson().replace("\"lr_multipliers\" : { }", "\"lr_multipliers\" : {\"moe-big\": 2}"), "spec"));
        assertEquals(0, dense.settings(spec).predictorDim());
        assertEquals(4, mod.settings(spec).predictorDim());
    }

    @Test
    void parabolaFitFindsTheMinimum() {
        double[] params = new double[7];
        double[] loss = new double[7];
        for (int i = 0; i < params.length; i++) {
            double u = 4 + 0.4 * i;
            params[i] = Math.pow(10, u);
            loss[i] = 0.5 * (u - 5.3) * (u - 5.3) + 1.2;
        }
        IsoFlopFit fit = IsoFlopFit.of(params, loss);
        assertEquals(Math.pow(10, 5.3), fit.optimalParams(), 1e-6 * Math.pow(10, 5.3));
        assertEquals(1.2, fit.optimalLoss(), 1e-9);
        assertEquals(0.5, fit.a(), 1e-9);
        assertEquals(loss[3], fit.loss(params[3]), 1e-9);
        // noise moves the minimum a little, not far
        double[] noisy = loss.clone();
        Random random = new Random(1);
        for (int i = 0; i < noisy.length; i++) {
            noisy[i] += 0.01 * random.nextGaussian();
        }
        assertEquals(5.3, Math.log10(IsoFlopFit.of(params, noisy).optimalParams()), 0.1);
        // no minimum: a curve that opens downwards, and one whose minimum lies beyond the sizes trained
        double[] down = new double[7];
        double[] beyond = new double[7];
        for (int i = 0; i < params.length; i++) {
            double u = Math.log10(params[i]);
            down[i] = -loss[i];
            beyond[i] = 0.5 * (u - 9) * (u - 9);
        }
        assertNull(IsoFlopFit.of(params, down).optimalParams());
        assertNull(IsoFlopFit.of(params, beyond).optimalParams());
        assertNotNull(IsoFlopFit.of(params, beyond).a());
        assertThrows(IllegalArgumentException.class, () -> IsoFlopFit.of(new double[] {1e4, 1e5}, new double[] {1, 2}));
        assertThrows(IllegalArgumentException.class, () -> IsoFlopFit.of(new double[] {1e4, 1e4, 1e4}, new double[] {1, 2, 3}));
    }

    @Test
    void aSizeWithItsOwnBudgetsIsTrainedAtThoseOnly() {
        SweepSpec.Size a = new SweepSpec.Size("a", 16, 2, 2, 32, List.of(1e8));
        SweepSpec.Size b = new SweepSpec.Size("b", 24, 2, 2, 48);
        SweepSpec.Size c = new SweepSpec.Size("c", 32, 2, 2, 64, List.of(2e8));
        SweepSpec spec = sized(List.of(a, b, c), new SweepSpec.Ablation(2e8, "c", List.of(0.5), false, false, false));
        assertEquals(List.of("b1e8-a-dense", "b1e8-a-mod", "b1e8-b-dense", "b1e8-b-mod", "b2e8-b-dense", "b2e8-b-mod",
                        "b2e8-c-dense", "b2e8-c-mod", "b2e8-c-mod-c0.5"),
                SweepRun.plan(spec).stream().map(SweepRun::name).toList());
        assertEquals(spec, SweepSpec.fromJson(spec.toJson(), "spec"));
        // a size without the field is written without it, as before the field existed
        assertFalse(SweepSpec.fromJson(spec.toJson(), "spec").toJson().contains("\"budgets\" : null"));
        assertRefused("size a: budgets must list some of the sweep's budgets, each once, got [3.0E8]",
                () -> sized(List.of(new SweepSpec.Size("a", 16, 2, 2, 32, List.of(3e8)), b), null));
        assertRefused("size a: budgets must list some of the sweep's budgets, each once, got []",
                () -> sized(List.of(new SweepSpec.Size("a", 16, 2, 2, 32, List.of()), b), null));
        assertRefused("no size is trained at budget 2.0E8", () -> sized(List.of(a), null));
        assertRefused("ablation.size a is not trained at ablation.budget 2.0E8",
                () -> sized(List.of(a, b), new SweepSpec.Ablation(2e8, "a", List.of(), false, true, false)));
    }

    private static SweepSpec sized(List<SweepSpec.Size> sizes, SweepSpec.Ablation ablation) {
        return new SweepSpec(text.toString(), 1 << 20, 16, 2, 3, 1, List.of(1e8, 2e8), sizes, 0.25, 4, false, 3e-3, Map.of(), 16,
                0.1, 0.1, 0.1, 1.0, 0.01, 1.0, 2, 5, ablation);
    }

    @Test
    void badSpecsAreRefused() throws IOException {
        String good = micro().toJson();
        assertEquals(micro(), SweepSpec.fromJson(good, "spec"));
        assertRefused("budgets must be in increasing order", () -> spec(List.of(2e8, 1e8), null, 5));
        assertRefused("budgets must not repeat", () -> spec(List.of(1e8, 1e8), null, 5));
        assertRefused("ablation.budget", () -> spec(List.of(1e8), new SweepSpec.Ablation(3e8, "a", List.of(), false, false, false), 5));
        assertRefused("ablation.size", () -> spec(List.of(1e8), new SweepSpec.Ablation(1e8, "z", List.of(), false, false, false), 5));
        assertRefused("fewer than min_steps", () -> SweepRun.plan(spec(List.of(1e7), null, 5)));
        assertRefused("capacity must be in (0, 1)", () -> SweepSpec.fromJson(good.replace("\"capacity\" : 0.25", "\"capacity\" : 1.5"), "spec"));
        SweepSpec.Size odd = new SweepSpec.Size("odd", 32, 2, 5, 64);
        assertRefused("size odd: config", () -> new SweepSpec(text.toString(), 1 << 20, 16, 2, 3, 1, List.of(1e8), List.of(odd),
                0.25, 4, false, 3e-3, Map.of(), 16, 0.1, 0.1, 0.1, 1.0, 0.01, 1.0, 2, 5, null));
        assertRefused("spec: not a sweep spec", () -> SweepSpec.fromJson(good.replace("\"seed\"", "\"sed\""), "spec"));
        assertRefused("spec: not a sweep spec", () -> SweepSpec.fromJson(good.replace("\"batch\" : 2,", ""), "spec"));
        // the document as a whole and each value as it is: no null spec, no coercion, no Java types in the message
        assertRefused("spec: not a sweep spec: null, where a JSON object belongs", () -> SweepSpec.fromJson("null", "spec"));
        String dim = good.substring(good.indexOf("\"dim\" : ") + 8, good.indexOf(",", good.indexOf("\"dim\" : ")));
        for (String bad : List.of("16.5", "\"16\"", "true", "null")) {
            ModException e = assertThrows(ModException.class,
                    () -> SweepSpec.fromJson(good.replaceFirst("\"dim\" : " + dim, "\"dim\" : " + bad), "spec"), bad);
            assertTrue(e.getMessage().startsWith("spec: not a sweep spec: sizes[0].dim: "), bad + ": " + e.getMessage());
            assertTrue(!e.getMessage().contains("`") && !e.getMessage().contains("dev.mod"), e.getMessage());
        }
        assertRefused("ablation capacities must differ (each names a run), got [0.5, 0.5]",
                () -> spec(List.of(1e8), new SweepSpec.Ablation(1e8, "a", List.of(0.5, 0.5), false, false, false), 5));
        assertRefused("--shard must be", () -> Sweep.Shard.parse("2/2"));
        assertRefused("--shard must be", () -> Sweep.Shard.parse("x"));
        // a folder holds one spec: another one is refused before anything runs, and reports do not mix specs
        Path dir = shared.resolve("refusals");
        SweepSpec small = spec(List.of(1e8), null, 5);
        new Sweep(small, dir, 2).run(new Sweep.Shard(0, 6), QUIET);
        SweepSpec other = spec(List.of(1e8), null, 6);
        assertRefused("holds a sweep of another spec (min_steps: 6 given, 5 in the folder)",
                () -> new Sweep(other, dir, 2).run(Sweep.Shard.ALL, QUIET));
        Path otherDir = shared.resolve("refusals-other");
        new Sweep(other, otherDir, 2).run(new Sweep.Shard(0, 6), QUIET);
        assertRefused("is a sweep of another spec", () -> SweepReport.of(List.of(dir, otherDir)));
        assertRefused("is not a sweep folder", () -> SweepReport.of(List.of(shared)));
    }

    /**
     * A spec edited in place (its spec.json replaced, as when a size is added to bracket an optimum): the finished runs
     * it gives the settings they trained with are kept as they are, and one it gives other settings is refused.
     */
    @Test
    void aSpecEditedInPlaceKeepsOnlyTheRunsItLeftUnchanged() throws IOException {
        Path dir = shared.resolve("edited");
        SweepSpec small = spec(List.of(1e8), null, 5);
        List<SweepResult> trained = new Sweep(small, dir, 2).run(new Sweep.Shard(0, 3), QUIET);
        String names = String.join(",", trained.stream().map(SweepResult::name).toList());

        List<SweepSpec.Size> grownSizes = new ArrayList<>(small.sizes());
        grownSizes.add(new SweepSpec.Size("d", 40, 2, 2, 80));
        SweepSpec grown = new SweepSpec(small.data(), small.maxDataBytes(), small.seqLen(), small.batch(), small.seed(), small.seeds(),
                small.budgets(), grownSizes, small.capacity(), small.predictorDim(), small.countPredictorFlops(), small.lr(),
                small.lrMultipliers(), small.lrReferenceDim(), small.warmupFraction(), small.minLrRatio(), small.weightDecay(),
                small.clip(), small.auxRouter(), small.auxPredictor(), small.evalBatches(), small.minSteps(), null);
        Files.writeString(dir.resolve("spec.json"), grown.toJson());
        List<SweepResult> kept = new Sweep(grown, dir, 2).run(Sweep.Shard.ALL, Sweep.RunNames.parse(names), QUIET);
        assertEquals(trained, kept, "the runs a size added leaves unchanged are kept, not trained again");

        SweepSpec faster = new SweepSpec(small.data(), small.maxDataBytes(), small.seqLen(), small.batch(), small.seed(), small.seeds(),
                small.budgets(), grownSizes, small.capacity(), small.predictorDim(), small.countPredictorFlops(), 2 * small.lr(),
                small.lrMultipliers(), small.lrReferenceDim(), small.warmupFraction(), small.minLrRatio(), small.weightDecay(),
                small.clip(), small.auxRouter(), small.auxPredictor(), small.evalBatches(), small.minSteps(), null);
        Files.writeString(dir.resolve("spec.json"), faster.toJson());
        ModException e = assertThrows(ModException.class,
                () -> new Sweep(faster, dir, 2).run(Sweep.Shard.ALL, Sweep.RunNames.parse(names), QUIET));
        assertTrue(e.getMessage().contains(trained.getFirst().name() + " was trained with other settings than the spec gives it (")
                && e.getMessage().contains(" in the spec, ") && e.getMessage().contains(" in the run)"), e.getMessage());
        assertRefused(trained.getFirst().name() + " was trained with other settings than the spec gives it (",
                () -> SweepReport.of(List.of(dir)));

        Files.delete(dir.resolve("runs").resolve(trained.getFirst().name()).resolve("settings.json"));
        Files.writeString(dir.resolve("spec.json"), grown.toJson());
        assertRefused(trained.getFirst().name() + " holds no settings.json",
                () -> new Sweep(grown, dir, 2).run(Sweep.Shard.ALL, Sweep.RunNames.parse(names), QUIET));
    }

    private static void assertRefused(String message, org.junit.jupiter.api.function.Executable action) {
        ModException e = assertThrows(ModException.class, action);
        assertTrue(e.getMessage().contains(message), e.getMessage());
    }
}
