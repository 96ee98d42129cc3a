package dev.mod.plot;

import dev.mod.plot.Charts.Axis;
import dev.mod.plot.Charts.Line;
import dev.mod.plot.Charts.Look;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.axis.ValueAxis;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.chart.ui.RectangleEdge;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.awt.Color;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The one chart style: markers on every point, pairs in one colour, ranges that never collapse, legends off the data. */
class ChartsTest {
    @TempDir
    Path dir;

    @Test
    void anAxisOfCountsTicksAtWholeNumbersOnly() {
        JFreeChart chart = Charts.lineChart("t", "s", Axis.counts("blocks"), new Axis("nats", false),
                List.of(new Line("entropy", new double[] {0, 1, 2, 3}, new double[] {1.1, 0.9, 0.8, 0.95}, 0, Look.SOLID)));
        chart.createBufferedImage(960, 620);
        NumberAxis counts = (NumberAxis) chart.getXYPlot().getDomainAxis();
        assertEquals(1.0, counts.getTickUnit().getSize(), "0, 1, 2, 3 and nothing between");
        NumberAxis plain = (NumberAxis) chart.getXYPlot().getRangeAxis();
        assertTrue(plain.getTickUnit().getSize() < 1, "a plain axis keeps fractional ticks");
    }

    @Test
    void pngsAreEncodedWithoutImageIOsTemporaryFiles() {
        javax.imageio.ImageIO.setUseCache(true);
        Path png = dir.resolve("bars.png");
        Charts.bars("t", null, "v", List.of("a", "b"), new double[] {1, 2}, png);
        assertTrue(Files.exists(png));
        // a temporary cache file's cleaner thread died with an uncaught exception on a full disk
        assertFalse(javax.imageio.ImageIO.getUseCache(), "ImageIO's file cache is off");
    }

    @Test
    void aSinglePointGetsARangeAroundIt() {
        for (boolean log : new boolean[] {false, true}) {
            JFreeChart chart = Charts.lineChart("one", null, new Axis("x", log), new Axis("y", log),
                    List.of(new Line("only", new double[] {3e5}, new double[] {2.5}, 0, Look.SOLID)));
            XYPlot plot = chart.getXYPlot();
            for (ValueAxis axis : List.of(plot.getDomainAxis(), plot.getRangeAxis())) {
                assertTrue(axis.getRange().getLength() > 0, "a zero-width axis repeats its tick labels");
            }
            assertTrue(plot.getDomainAxis().getRange().contains(3e5) && plot.getRangeAxis().getRange().contains(2.5));
            assertTrue(plot.getDomainAxis().getLowerBound() < 3e5 && plot.getDomainAxis().getUpperBound() > 3e5, "not on the edge");
            assertTrue(((XYLineAndShapeRenderer) plot.getRenderer()).getSeriesShapesVisible(0), "a marker shows the point");
        }
    }

    @Test
    void logTicksReadAsSiNumbers() {
        Charts.SiFormat f = new Charts.SiFormat();
        assertEquals("80.3k", f.format(80304));
        assertEquals("1.63M", f.format(1_633_120));
        assertEquals("126G", f.format(1.26e11));
        assertEquals("7.94T", f.format(7.94e12));
        assertEquals("500", f.format(500));
        assertEquals("1", f.format(1));
        assertEquals("0.25", f.format(0.25));
        assertEquals("1T", f.format(0.9999999e12));
        assertEquals("-2.5", f.format(-2.5));
        assertEquals("0", f.format(0));
    }

    @Test
    void logAxesOnlyWhereTheDataSpanADecade() {
        Axis logX = new Axis("x", true);
        JFreeChart wide = Charts.lineChart("wide", null, logX, new Axis("y", false),
                List.of(new Line("l", new double[] {1e4, 1e7}, new double[] {1, 2}, 0, Look.SOLID)));
        assertTrue(wide.getXYPlot().getDomainAxis() instanceof org.jfree.chart.axis.LogAxis);
        JFreeChart narrow = Charts.lineChart("narrow", null, logX, new Axis("y", false),
                List.of(new Line("l", new double[] {1.2e7, 2e7}, new double[] {1, 2}, 0, Look.SOLID)));
        assertFalse(narrow.getXYPlot().getDomainAxis() instanceof org.jfree.chart.axis.LogAxis);
    }

    @Test
    void emptyLinesAreLeftOutAndNoDataIsSaid() throws IOException {
        JFreeChart chart = Charts.lineChart("some", null, new Axis("x", false), new Axis("y", false), List.of(
                new Line("empty", new double[0], new double[0], 0, Look.SOLID),
                new Line("two", new double[] {1, 2}, new double[] {5, 5}, 1, Look.DASHED)));
        XYPlot plot = chart.getXYPlot();
        assertEquals(1, plot.getDataset().getSeriesCount());
        assertEquals("two", plot.getDataset().getSeriesKey(0));
        assertTrue(plot.getRangeAxis().getRange().getLength() > 0, "a flat line still gets a range");
        JFreeChart none = Charts.lineChart("none", null, new Axis("x", true), new Axis("y", false),
                List.of(new Line("empty", new double[0], new double[0], 0, Look.SOLID)));
        assertEquals(0, none.getXYPlot().getDataset().getSeriesCount());
        assertEquals("no data to plot", none.getXYPlot().getNoDataMessage());
        Path png = dir.resolve("none.png");
        Charts.lines("none", null, new Axis("x", true), new Axis("y", false), List.of(), png);
        assertTrue(Files.size(png) > 0);
    }

    @Test
    void pairsShareAColourAndDifferInDashAndFill() {
        JFreeChart chart = Charts.lineChart("pairs", "sub", new Axis("step", false), new Axis("loss", false), List.of(
                new Line("a: train", new double[] {1, 2}, new double[] {3, 2}, 0, Look.DASHED),
                new Line("a: held-out", new double[] {1, 2}, new double[] {3.1, 2.2}, 0, Look.SOLID),
                new Line("b: train", new double[] {1, 2}, new double[] {3, 2.5}, 1, Look.DASHED),
                new Line("fit", new double[] {1, 2}, new double[] {3, 2.5}, 1, Look.THIN)));
        XYLineAndShapeRenderer r = (XYLineAndShapeRenderer) chart.getXYPlot().getRenderer();
        assertEquals(r.getSeriesPaint(0), r.getSeriesPaint(1));
        assertFalse(r.getSeriesPaint(0).equals(r.getSeriesPaint(2)));
        assertFalse(r.getSeriesShapesFilled(0));
        assertTrue(r.getSeriesShapesFilled(1));
        assertFalse(r.getSeriesStroke(0).equals(r.getSeriesStroke(1)));
        assertFalse(r.getSeriesShape(0).equals(r.getSeriesShape(2)), "a shape per colour: reads in grayscale");
        assertFalse(r.isSeriesVisibleInLegend(3), "fits are explained in the subtitle");
        assertEquals(Color.WHITE, chart.getXYPlot().getBackgroundPaint());
        assertEquals(RectangleEdge.BOTTOM, chart.getLegend().getPosition());
    }

    @Test
    void barsStartAtZeroSoThatHeightsCompareAsValues() {
        JFreeChart chart = Charts.barChart("b", null, "loss", List.of("a", "b"), new double[] {1.13, 1.16});
        assertEquals(0, chart.getCategoryPlot().getRangeAxis().getLowerBound());
        assertTrue(chart.getCategoryPlot().getRangeAxis().getUpperBound() > 1.16);
    }

    @Test
    void spreadsReferenceLinesAndPointLabelsAreDrawnAndKeptInRange() {
        Line line = new Line("speedup", new double[] {128, 512}, new double[] {1.6, 1.7}, 1, Look.SOLID)
                .withSpread(new double[] {1.5, 1.65}, new double[] {1.62, 1.9}).withLabels(new String[] {"1e12", "1e13"});
        JFreeChart chart = Charts.lineChart("s", null, new Axis("T", true), new Axis("ratio", false, 1.0), List.of(line));
        XYPlot plot = chart.getXYPlot();
        assertTrue(plot.getRangeAxis().getRange().contains(1.0) && plot.getRangeAxis().getRange().contains(1.9),
                "the reference and the top of the spread are in range: " + plot.getRangeAxis().getRange());
        assertEquals(1.0, ((org.jfree.chart.plot.ValueMarker) plot.getRangeMarkers(org.jfree.chart.ui.Layer.FOREGROUND).iterator().next())
                .getValue());
        org.jfree.data.xy.IntervalXYDataset data = (org.jfree.data.xy.IntervalXYDataset) plot.getDataset();
        assertEquals(1.65, data.getStartYValue(0, 1));
        assertEquals(1.9, data.getEndYValue(0, 1));
        XYLineAndShapeRenderer r = (XYLineAndShapeRenderer) plot.getRenderer();
        assertEquals("1e13", r.getSeriesItemLabelGenerator(0).generateLabel(data, 0, 1));
        assertTrue(r.isSeriesItemLabelsVisible(0));
        JFreeChart plain = Charts.lineChart("p", null, new Axis("T", true), new Axis("ratio", false),
                List.of(new Line("l", new double[] {1, 2}, new double[] {1.6, 1.7}, 0, Look.SOLID)));
        assertFalse(plain.getXYPlot().getRangeAxis().getRange().contains(1.0), "no reference: the axis fits the data");
    }
}
