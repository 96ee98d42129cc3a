package dev.mod.cli;

import dev.mod.ModException;
import dev.mod.io.IoErrors;
import dev.mod.io.TextFile;
import dev.mod.model.MemoryBudget;
import dev.mod.model.ModelConfig;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** A batch of token ids written as rows separated by ';' (or new lines), ids separated by ',' or spaces. */
final class TokenBatch {
    private TokenBatch() {
    }

    static int[][] parse(String text) {
        if (text.replaceAll("[;\\s]", "").isEmpty()) {
            throw new ModException("tokens: no tokens given");
        }
        List<int[]> rows = new ArrayList<>();
        // trailing line ends aside, an empty row is a mistake, not something to skip
        for (String rowText : text.strip().split("[;\\n]", -1)) {
            if (rowText.isBlank() && !text.isBlank()) {
                throw new ModException("tokens: row " + rows.size() + " is empty");
            }
            if (rowText.isBlank()) {
                continue;
            }
            // One comma (with spaces around it, or none) or a run of spaces between ids: "1,,2" has an empty id.
            String[] items = rowText.strip().split("\\s*,\\s*|\\s+", -1);
            int[] row = new int[items.length];
            for (int i = 0; i < items.length; i++) {
                if (items[i].isEmpty()) {
                    throw new ModException("tokens: row " + rows.size() + " has an empty token id at position " + i);
                }
                // ASCII digits only: Integer.parseInt also takes the digits of other scripts.
                if (!items[i].matches("-?[0-9]{1,10}")) {
                    throw new ModException("tokens: \"" + shortened(items[i]) + "\" in row " + rows.size() + " is not an integer token id");
                }
                try {
                    row[i] = Integer.parseInt(items[i]);
                } catch (NumberFormatException e) {
                    throw new ModException("tokens: \"" + items[i] + "\" in row " + rows.size() + " is not an integer token id");
                }
            }
            if (!rows.isEmpty() && row.length != rows.get(0).length) {
                throw new ModException("tokens: rows must all have the same length; row 0 has " + rows.get(0).length
                        + " tokens, row " + rows.size() + " has " + row.length);
            }
            rows.add(row);
        }
        if (rows.isEmpty()) {
            throw new ModException("tokens: no tokens given");
        }
        return rows.toArray(new int[0][]);
    }

    /** At most 40 characters of what the user gave, so that an error stays one short line. */
    private static String shortened(String text) {
        return text.length() <= 40 ? text : text.substring(0, 40) + "...";
    }

    static int[][] read(Path file) {
        if (Files.isDirectory(file)) {
            throw new ModException("cannot read tokens file " + file + ": it is a directory");
        }
        try {
            if (Files.isRegularFile(file)) {
                // The text, its rows, the split ids and the arrays take up to about 48 bytes of heap per byte of file (a
                // 192 MB file of one row took 5.5 GB); checked before reading it.
                long size = Files.size(file);
                if (size > ModelConfig.MAX_ARRAY) {
                    throw new ModException("tokens file " + file + " is " + size + " bytes, more than Java reads into one string ("
                            + ModelConfig.MAX_ARRAY + ")");
                }
                MemoryBudget.check("the tokens file " + file + " (" + size + " bytes) and its rows", 48 * size);
            }
            return parse(TextFile.read(file));
        } catch (IOException e) {
            throw new ModException("cannot read tokens file " + file + ": " + IoErrors.describe(e), e);
        }
    }
}
