package dev.mod.cli;

import me.tongfei.progressbar.DelegatingProgressBarConsumer;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
import me.tongfei.progressbar.ProgressState;
import picocli.CommandLine.Option;

import java.io.Console;
import java.time.Duration;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * --quiet, and how the long commands (train, sweep, study) show their progress: a bar redrawn in place on a
 * terminal; a plain line every {@value #LINE_INTERVAL_SECONDS} s when the output goes to a pipe or a file, where
 * redrawn frames would pile up as one endless line; nothing with --quiet.
 */
final class ProgressOption {
    static final int LINE_INTERVAL_SECONDS = 10;

    @Option(names = "--quiet", description = "No progress display (the results are printed as usual).")
    boolean quiet;

    ProgressBar bar(String task, long max) {
        ProgressBarBuilder builder = new ProgressBarBuilder().setTaskName(task).setInitialMax(max);
        if (quiet) {
            return builder.setConsumer(new DelegatingProgressBarConsumer(line -> { })).build();
        }
        Console console = System.console();
        if (console != null && console.isTerminal()) {
            return builder.setStyle(ProgressBarStyle.ASCII).continuousUpdate().build();
        }
        return builder.setUpdateIntervalMillis(LINE_INTERVAL_SECONDS * 1000)
                .setRenderer((state, width) -> line(state))
                .setConsumer(new DelegatingProgressBarConsumer(new ChangedLines(), Integer.MAX_VALUE))
                .build();
    }

    /**
     * "train 120/400 (30%), 0:00:12 elapsed, about 0:00:28 left: loss 1.234"; nothing before the first step (a run
     * that fails while it sets up then prints its one error line alone).
     */
    static String line(ProgressState s) {
        if (s.getCurrent() == s.getStart() && s.getMax() > 0) {
            return "";
        }
        long done = s.getCurrent() - s.getStart();
        Duration elapsed = s.getElapsedAfterStart();
        String left = "";
        if (done > 0 && s.getMax() > s.getCurrent()) {
            left = ", about " + clock(elapsed.multipliedBy(s.getMax() - s.getCurrent()).dividedBy(done)) + " left";
        }
        String extra = s.getExtraMessage();
        return String.format(Locale.ROOT, "%s %d/%d (%d%%), %s elapsed%s%s", s.getTaskName(), s.getCurrent(), s.getMax(),
                s.getMax() == 0 ? 100 : 100 * s.getCurrent() / s.getMax(), clock(s.getTotalElapsed()), left,
                extra == null || extra.isEmpty() ? "" : ": " + extra);
    }

    /** Prints a line unless it repeats the last one (the bar renders once more when it closes). */
    private static final class ChangedLines implements Consumer<String> {
        private String last;

        @Override
        public void accept(String line) {
            if (!line.isEmpty() && !line.equals(last)) {
                System.err.println(line);
                last = line;
            }
        }
    }

    private static String clock(Duration d) {
        long seconds = d.toSeconds();
        return String.format(Locale.ROOT, "%d:%02d:%02d", seconds / 3600, seconds / 60 % 60, seconds % 60);
    }
}
