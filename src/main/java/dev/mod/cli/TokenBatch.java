package dev.mod.cli;

import dev.mod.ModException;

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
        List<int[]> rows = new ArrayList<>();
        for (String rowText : text.split("[;\\n]")) {
            if (rowText.isBlank()) {
                continue;
            }
            String[] items = rowText.trim().split("[,\\s]+");
            int[] row = new int[items.length];
            for (int i = 0; i < items.length; i++) {
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

    static int[][] read(Path file) {
        try {
            return parse(Files.readString(file));
        } catch (IOException e) {
            throw new ModException("cannot read tokens file " + file + ": " + e.getMessage(), e);
        }
    }
}
