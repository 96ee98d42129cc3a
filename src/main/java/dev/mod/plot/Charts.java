package dev.mod.plot;

import dev.mod.io.AtomicFiles;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.CategoryAxis;
import org.jfree.chart.axis.CategoryLabelPositions;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.axis.NumberTickUnit;
import org.jfree.chart.axis.ValueAxis;
import org.jfree.chart.labels.StandardCategoryItemLabelGenerator;
import org.jfree.chart.plot.CategoryPlot;
import org.jfree.chart.plot.ValueMarker;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.category.BarRenderer;
import org.jfree.chart.renderer.category.StandardBarPainter;
import org.jfree.chart.renderer.xy.XYErrorRenderer;
import org.jfree.chart.title.LegendTitle;
import org.jfree.chart.title.TextTitle;
import org.jfree.chart.ui.RectangleEdge;
import org.jfree.data.category.DefaultCategoryDataset;
import org.jfree.data.xy.YIntervalSeries;
import org.jfree.data.xy.YIntervalSeriesCollection;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Shape;
import java.awt.geom.Ellipse2D;
import java.awt.geom.Path2D;
import java.awt.geom.Rectangle2D;
import java.nio.file.Path;
import java.math.BigDecimal;
import java.math.MathContext;
import java.text.DecimalFormat;
import java.text.DecimalFormatSymbols;
import java.text.FieldPosition;
import java.text.NumberFormat;
import java.text.ParsePosition;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;

/**
 * The one style of every plot the project draws (study, training, sweep), on JFreeChart, headless: white
 * background, light grid, a marker on every data point (so a single point shows), colours from the
 * Okabe-Ito palette picked so that neighbours differ in lightness too, and each colour with its own marker
 * shape, so a plot still reads in grayscale; paired lines (a run's training and held-out loss; a budget's
 * dense and MoD curves) share a colour and differ in dash and fill. Legends sit under the plot, never on the
 * data; log axes where the data span decades; an axis whose data are one value is widened around it rather
 * than drawn with repeated tick labels, and a plot without data says so.
 */
public final class Charts {
    private Charts() {
    }

    /** Colours in an order whose neighbours differ in lightness (black, orange, blue, green, vermillion, sky, purple, yellow). */
    private static final Color[] PALETTE = {
            new Color(0x000000), new Color(0xE69F00), new Color(0x0072B2), new Color(0x009E73),
            new Color(0xD55E00), new Color(0x56B4E9), new Color(0xCC79A7), new Color(0xF0E442)};

    /**
     * How a line is drawn: solid with filled markers, dashed with open markers, markers only, a dotted curve
     * without markers (a fit, sampled densely), or large rings around points (marking some, such as a fit's
     * minimum). THIN and RING lines stay out of the legend: the subtitle says what they are.
     */
    public enum Look {
        SOLID, DASHED, POINTS, THIN, RING
    }

    /**
     * A line of (x, y) points. Lines with the same hue share a colour and marker shape (a pair). Optionally each
     * point has a spread, drawn as an error bar from low to high (null: none), and a label written beside it (null:
     * none).
     */
    public record Line(String name, double[] x, double[] y, int hue, Look look, double[] low, double[] high, String[] labels) {
        public Line {
            if (x.length != y.length || (low == null) != (high == null) || (low != null && (low.length != x.length
                    || high.length != x.length)) || (labels != null && labels.length != x.length)) {
                throw new IllegalArgumentException("x, y, the spread and the labels differ in length");
            }
        }

        public Line(String name, double[] x, double[] y, int hue, Look look) {
            this(name, x, y, hue, look, null, null, null);
        }

        /** The same line with an error bar from low[i] to high[i] at each point. */
        public Line withSpread(double[] lowValues, double[] highValues) {
            return new Line(name, x, y, hue, look, lowValues, highValues, labels);
        }

        /** The same line with a label beside each point. */
        public Line withLabels(String[] pointLabels) {
            return new Line(name, x, y, hue, look, low, high, pointLabels);
        }
    }

    /**
     * The axis of a plot: its label, whether it is logarithmic, and a reference value drawn as a grey line across
     * the plot and always within its range (1 on a ratio's axis: no change), or null.
     */
    public record Axis(String label, boolean log, Double reference, boolean whole) {
        public Axis(String label, boolean log) {
            this(label, log, null, false);
        }

        public Axis(String label, boolean log, Double reference) {
            this(label, log, reference, false);
        }

        /** A linear axis of counts: ticks at whole numbers only. */
        public static Axis counts(String label) {
            return new Axis(label, false, null, true);
        }
    }

    /** Draws the lines into a PNG; lines without points are left out (and from the legend). */
    public static void lines(String title, String subtitle, Axis xAxis, Axis yAxis, List<Line> lines, Path png) {
        save(lineChart(title, subtitle, xAxis, yAxis, lines), png);
    }

    /** The chart of lines(), for tests. */
    public static JFreeChart lineChart(String title, String subtitle, Axis xAxis, Axis yAxis, List<Line> lines) {
        YIntervalSeriesCollection data = new YIntervalSeriesCollection();
        XYErrorRenderer renderer = new XYErrorRenderer();
        renderer.setDrawXError(false);
        renderer.setCapLength(6);
        int series = 0;
        for (Line line : lines) {
            YIntervalSeries s = new YIntervalSeries(line.name(), false, true);
            List<String> labels = new ArrayList<>();
            for (int i = 0; i < line.x().length; i++) {
                double low = line.low() == null ? line.y()[i] : line.low()[i];
                double high = line.high() == null ? line.y()[i] : line.high()[i];
                if (Double.isFinite(line.x()[i]) && Double.isFinite(line.y()[i]) && Double.isFinite(low) && Double.isFinite(high)
                        && (!xAxis.log() || line.x()[i] > 0) && (!yAxis.log() || low > 0)) {
                    s.add(line.x()[i], line.y()[i], low, high);
                    labels.add(line.labels() == null ? null : line.labels()[i]);
                }
            }
            if (s.getItemCount() == 0) {
                continue;
            }
            data.addSeries(s);
            style(renderer, series, line.hue(), line.look());
            if (line.labels() != null) {
                renderer.setSeriesItemLabelGenerator(series, (dataset, row, item) -> labels.get(item));
                renderer.setSeriesItemLabelsVisible(series, true);
                renderer.setSeriesItemLabelFont(series, new Font("SansSerif", Font.PLAIN, 11));
            }
            series++;
        }
        double[] xRange = range(data, true, null);
        double[] yRange = range(data, false, yAxis.reference());
        boolean logX = xAxis.log() && spansDecade(xRange);
        boolean logY = yAxis.log() && spansDecade(yRange);
        XYPlot plot = new XYPlot(data, axis(xAxis.label(), logX, xRange, xAxis.whole()), axis(yAxis.label(), logY, yRange, yAxis.whole()),
                renderer);
        if (yAxis.reference() != null && series > 0) {
            ValueMarker reference = new ValueMarker(yAxis.reference(), new Color(0x888888), new BasicStroke(1.2f));
            plot.addRangeMarker(reference);
        }
        JFreeChart chart = new JFreeChart(title, new Font("SansSerif", Font.BOLD, 16), plot, series > 0);
        decorate(chart, subtitle);
        plot.setBackgroundPaint(Color.WHITE);
        plot.setDomainGridlinePaint(new Color(0xDDDDDD));
        plot.setRangeGridlinePaint(new Color(0xDDDDDD));
        plot.setNoDataMessage("no data to plot");
        return chart;
    }

    /**
     * Bars with their values written on them (four decimals: losses differ little). The value axis starts at zero, so
     * that the bars' heights compare as their values do.
     */
    public static void bars(String title, String subtitle, String valueLabel, List<String> categories, double[] values, Path png) {
        save(barChart(title, subtitle, valueLabel, categories, values), png);
    }

    public static JFreeChart barChart(String title, String subtitle, String valueLabel, List<String> categories, double[] values) {
        DefaultCategoryDataset data = new DefaultCategoryDataset();
        double lo = 0;
        double hi = 0;
        for (int i = 0; i < categories.size(); i++) {
            data.addValue(values[i], "value", categories.get(i));
            lo = Math.min(lo, values[i]);
            hi = Math.max(hi, values[i]);
        }
        NumberAxis valueAxis = new NumberAxis(valueLabel);
        CategoryAxis categoryAxis = new CategoryAxis();
        categoryAxis.setCategoryLabelPositions(CategoryLabelPositions.UP_45);
        BarRenderer renderer = new BarRenderer();
        renderer.setBarPainter(new StandardBarPainter());
        renderer.setSeriesPaint(0, new Color(0x0072B2));
        renderer.setShadowVisible(false);
        renderer.setDefaultItemLabelGenerator(new StandardCategoryItemLabelGenerator("{2}", new DecimalFormat("0.0000")));
        renderer.setDefaultItemLabelsVisible(true);
        CategoryPlot plot = new CategoryPlot(data, categoryAxis, valueAxis, renderer);
        plot.setBackgroundPaint(Color.WHITE);
        plot.setRangeGridlinePaint(new Color(0xDDDDDD));
        plot.setNoDataMessage("no data to plot");
        if (!categories.isEmpty()) {
            valueAxis.setRange(Math.min(0, lo * 1.08), Math.max(hi * 1.08, 1e-9));
        }
        JFreeChart chart = new JFreeChart(title, new Font("SansSerif", Font.BOLD, 16), plot, false);
        decorate(chart, subtitle);
        return chart;
    }

    private static void decorate(JFreeChart chart, String subtitle) {
        chart.setBackgroundPaint(Color.WHITE);
        if (subtitle != null) {
            chart.addSubtitle(new TextTitle(subtitle, new Font("SansSerif", Font.PLAIN, 12)));
        }
        LegendTitle legend = chart.getLegend();
        if (legend != null) {
            legend.setPosition(RectangleEdge.BOTTOM);
            legend.setFrame(org.jfree.chart.block.BlockBorder.NONE);
        }
    }

    /** {lowest, highest} x (domain) or y of the data, spreads and the reference value included; lowest > highest when there are none. */
    private static double[] range(YIntervalSeriesCollection data, boolean domain, Double reference) {
        double lo = Double.POSITIVE_INFINITY;
        double hi = Double.NEGATIVE_INFINITY;
        for (int s = 0; s < data.getSeriesCount(); s++) {
            for (int i = 0; i < data.getItemCount(s); i++) {
                lo = Math.min(lo, domain ? data.getXValue(s, i) : data.getStartYValue(s, i));
                hi = Math.max(hi, domain ? data.getXValue(s, i) : data.getEndYValue(s, i));
            }
        }
        if (reference != null && lo <= hi) {
            lo = Math.min(lo, reference);
            hi = Math.max(hi, reference);
        }
        return new double[] {lo, hi};
    }

    /** A log axis asked for is drawn only where the data span a decade or more: within one, a linear one reads better. */
    private static boolean spansDecade(double[] range) {
        return range[0] <= range[1] && range[0] > 0 && range[1] >= 10 * range[0];
    }

    /** An axis over the data with a margin; one distinct value gets a range around it instead of a zero-width one. */
    private static ValueAxis axis(String label, boolean log, double[] range, boolean whole) {
        double lo = range[0];
        double hi = range[1];
        if (log) {
            LogAxis axis = new LogAxis(label);
            axis.setBase(10);
            axis.setSmallestValue(1e-300);
            axis.setNumberFormatOverride(new SiFormat());
            double l = Math.log10(lo);
            double h = Math.log10(hi);
            double margin = (h - l) * 0.06;
            axis.setRange(Math.pow(10, l - margin), Math.pow(10, h + margin));
            // a tick per decade, or per quarter decade (1, 1.78, 3.16, 5.62) below two: finer exponents crowd the axis
            axis.setTickUnit(new NumberTickUnit(h - l >= 2 ? 1 : 0.25));
            return axis;
        }
        NumberAxis axis = new NumberAxis(label);
        axis.setAutoRangeIncludesZero(false);
        if (whole) {
            axis.setStandardTickUnits(NumberAxis.createIntegerTickUnits());
        }
        axis.setNumberFormatOverride(new SiFormat());
        if (lo > hi) {
            axis.setRange(0, 1);
        } else {
            double margin = hi > lo ? (hi - lo) * 0.06 : Math.max(Math.abs(lo) * 0.1, 1e-3);
            axis.setRange(lo - margin, hi + margin);
        }
        return axis;
    }

    private static void style(XYErrorRenderer r, int series, int hue, Look look) {
        Color colour = PALETTE[Math.floorMod(hue, PALETTE.length)];
        r.setSeriesPaint(series, colour);
        r.setSeriesShape(series, look == Look.RING ? new Ellipse2D.Double(-10, -10, 20, 20) : shape(hue));
        r.setSeriesShapesVisible(series, look != Look.THIN);
        r.setSeriesShapesFilled(series, look != Look.DASHED && look != Look.RING);
        r.setSeriesLinesVisible(series, look != Look.POINTS && look != Look.RING);
        r.setSeriesVisibleInLegend(series, look != Look.THIN && look != Look.RING);
        r.setUseFillPaint(true);
        r.setSeriesFillPaint(series, look == Look.DASHED ? Color.WHITE : colour);
        r.setDrawOutlines(true);
        r.setUseOutlinePaint(false);
        float width = look == Look.THIN ? 1.2f : 2f;
        r.setSeriesStroke(series, look == Look.DASHED
                ? new BasicStroke(width, BasicStroke.CAP_BUTT, BasicStroke.JOIN_ROUND, 1f, new float[] {7f, 5f}, 0f)
                : look == Look.THIN
                ? new BasicStroke(width, BasicStroke.CAP_BUTT, BasicStroke.JOIN_ROUND, 1f, new float[] {2f, 3f}, 0f)
                : new BasicStroke(width));
    }

    /** A marker shape per hue: circle, square, triangle up, diamond, triangle down, cross, ... */
    private static Shape shape(int hue) {
        double s = 4.5;
        return switch (Math.floorMod(hue, 6)) {
            case 0 -> new Ellipse2D.Double(-s, -s, 2 * s, 2 * s);
            case 1 -> new Rectangle2D.Double(-s, -s, 2 * s, 2 * s);
            case 2 -> polygon(0, -s - 1, s + 1, s, -s - 1, s);
            case 3 -> polygon(0, -s - 1.5, s + 1.5, 0, 0, s + 1.5, -s - 1.5, 0);
            case 4 -> polygon(-s - 1, -s, s + 1, -s, 0, s + 1);
            default -> polygon(-s, -s / 3, -s / 3, -s / 3, -s / 3, -s, s / 3, -s, s / 3, -s / 3, s, -s / 3,
                    s, s / 3, s / 3, s / 3, s / 3, s, -s / 3, s, -s / 3, s / 3, -s, s / 3);
        };
    }

    /** Numbers as 3 significant digits with an SI prefix (80k, 1.6M, 126G, 7.94T): readable ticks on log axes. */
    static final class SiFormat extends NumberFormat {
        private static final String[] PREFIXES = {"", "k", "M", "G", "T", "P", "E"};

        @Override
        public StringBuffer format(double number, StringBuffer to, FieldPosition pos) {
            if (number == 0 || !Double.isFinite(number)) {
                return to.append(number == 0 ? "0" : String.valueOf(number));
            }
            double v = new BigDecimal(Math.abs(number)).round(new MathContext(3)).doubleValue();
            if (v < 1e-3) {
                return to.append(String.format(Locale.ROOT, "%.3g", number));
            }
            int group = v < 1000 ? 0 : Math.min(PREFIXES.length - 1, (int) Math.floor(Math.log10(v) / 3 + 1e-9));
            String digits = new DecimalFormat("0.###", DecimalFormatSymbols.getInstance(Locale.ROOT))
                    .format(Math.copySign(v, number) / Math.pow(1000, group));
            return to.append(digits).append(PREFIXES[group]);
        }

        @Override
        public StringBuffer format(long number, StringBuffer to, FieldPosition pos) {
            return format((double) number, to, pos);
        }

        @Override
        public Number parse(String source, ParsePosition pos) {
            throw new UnsupportedOperationException("tick labels are only written");
        }
    }

    private static Shape polygon(double... xy) {
        Path2D.Double p = new Path2D.Double();
        p.moveTo(xy[0], xy[1]);
        for (int i = 2; i < xy.length; i += 2) {
            p.lineTo(xy[i], xy[i + 1]);
        }
        p.closePath();
        return p;
    }

    private static void save(JFreeChart chart, Path png) {
        System.setProperty("java.awt.headless", "true");
        // PNG encoding in memory: ImageIO's default cache is a temporary file, whose cleaner thread ("StreamCloser") died
        // with an uncaught exception after a write failed on a full disk
        ImageIO.setUseCache(false);
        AtomicFiles.write(png, out -> ChartUtils.writeChartAsPNG(out, chart, 960, 620));
    }
}
