package dev.mod.cli;

import dev.mod.ModException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The `mod` command line: one subcommand per job. */
@Command(name = "mod",
        mixinStandardHelpOptions = true,
        versionProvider = Main.Version.class,
        description = "Mixture-of-Depths transformers: static forward plans on CPU and accelerator backends.",
        subcommands = {
                InitCommand.class,
                InfoCommand.class,
                ExportCommand.class,
                ImportCommand.class,
                ForwardCommand.class,
                GenerateCommand.class,
                EvalCommand.class,
                CalibrateCommand.class,
                TrainCommand.class,
                TrainCommand.Plot.class,
                DemoCommand.class,
                DevicesCommand.class,
                StudyCommand.class,
                SweepCommand.class,
                CommandLine.HelpCommand.class
        })
public final class Main implements java.util.concurrent.Callable<Integer> {
    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the CLI and returns its exit code: 0 ok, 1 an error in the input, 2 a usage error, 3 a bug. */
    public static int run(String... args) {
        CommandLine cli = new CommandLine(new Main());
        cli.getHelpSectionMap().put(CommandLine.Model.UsageMessageSpec.SECTION_KEY_COMMAND_LIST_HEADING,
                help -> "%nCommands, by what they are for (mod COMMAND --help for each):%n".formatted());
        cli.getHelpSectionMap().put(CommandLine.Model.UsageMessageSpec.SECTION_KEY_COMMAND_LIST, Main::groupedCommands);
        cli.setParameterExceptionHandler((e, a) -> {
            // picocli starts some messages with "Error: ", which would follow our own prefix
            String message = e.getMessage().replaceFirst("^Error: ", "");
            if (e instanceof CommandLine.UnmatchedArgumentException unmatched && !unmatched.getSuggestions().isEmpty()) {
                message += "; did you mean " + String.join(" or ", unmatched.getSuggestions()) + "?";
            }
            // "mod --help" for the top level, "mod init --help" for a command
            System.err.println("mod: error: " + message + " (see: " + e.getCommandLine().getCommandSpec().qualifiedName(" ") + " --help)");
            return 2;
        });
        cli.setExecutionExceptionHandler((e, c, parsed) -> {
            if (e instanceof ModException) {
                System.err.println("mod: error: " + capped(e.getMessage()));
                if (System.getenv("MOD_DEBUG") != null) {
                    e.printStackTrace();
                }
                return 1;
            }
            Throwable tornado = tornadoCause(e);
            if (tornado != null) {
                // TornadoVM's own errors (a device not found, a kernel that cannot be compiled) are about the
                // set-up, not a bug of mod: one line, without the colour codes TornadoVM puts in them.
                String message = String.valueOf(tornado.getMessage()).replaceAll("\u001B\\[[;\\d]*m", "");
                System.err.println("mod: error: tornado: " + message.lines().findFirst().orElse(message).strip());
                if (System.getenv("MOD_DEBUG") != null) {
                    e.printStackTrace();
                }
                return 1;
            }
            System.err.println("mod: internal error: " + e);
            if (System.getenv("MOD_DEBUG") != null) {
                e.printStackTrace();
            } else {
                System.err.println("(set MOD_DEBUG=1 for the stack trace)");
            }
            return 3;
        });
        return cli.execute(args);
    }

    /** The commands by what they are for, in the order a newcomer meets them. */
    private static final String[][] GROUPS = {
            {"Models", "init", "info", "calibrate", "import", "export"},
            {"Running a model", "forward", "generate", "eval", "demo", "devices"},
            {"Experiments", "train", "train-plot", "study", "sweep"},
            {"Help", "help"}};

    // `mod --help`'s list of commands, in groups, each command with the first sentence of its description
    private static String groupedCommands(CommandLine.Help help) {
        java.util.Map<String, CommandLine.Help> commands = help.subcommands();
        StringBuilder out = new StringBuilder();
        for (String[] group : GROUPS) {
            out.append(group[0]).append(":\n");
            for (int i = 1; i < group.length; i++) {
                CommandLine.Help command = commands.get(group[i]);
                String[] description = command.commandSpec().usageMessage().description();
                String line = description.length == 0 ? "" : description[0].replace("%n", " ").strip().split("(?<=\\.) ")[0];
                line = line.length() <= 100 ? line.replaceFirst(":$", ".") : line.substring(0, line.lastIndexOf(' ', 97)) + " ...";
                out.append(String.format(java.util.Locale.ROOT, "  %-11s %s%n", group[i], line));
            }
        }
        if (!commands.keySet().equals(java.util.Arrays.stream(GROUPS).flatMap(g -> java.util.Arrays.stream(g, 1, g.length))
                .collect(java.util.stream.Collectors.toSet()))) {
            throw new IllegalStateException("a command is missing from the groups of mod --help");
        }
        return out.toString();
    }

    /** An error line as the user sees it: what it echoes of the input is cut at 500 characters. */
    static String capped(String message) {
        String line = String.valueOf(message);
        return line.length() <= 500 ? line : line.substring(0, 500) + "... (" + (line.length() - 500) + " more characters)";
    }

    /** The first TornadoVM exception in the chain of causes, if any. */
    private static Throwable tornadoCause(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t.getClass().getName().startsWith("uk.ac.manchester.tornado.")) {
                return t;
            }
        }
        return null;
    }

    /** `mod` without a command is a usage error: the usage goes to stderr and the exit code is 2. */
    @Override
    public Integer call() {
        System.err.println("mod: error: no command given");
        spec.commandLine().usage(System.err);
        return 2;
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            return new String[] {"mod " + (v == null ? "(development build)" : v)};
        }
    }
}
