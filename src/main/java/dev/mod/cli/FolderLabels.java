package dev.mod.cli;

import dev.mod.ModException;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Labels for folders shown side by side (training runs, studies): each folder's name, with as many of its
 * parent folders as it takes to tell folders of the same name apart. The same folder twice is an error.
 */
final class FolderLabels {
    private FolderLabels() {
    }

    /** The labels of the folders, in their order; what names the folders (for the error) is `what`. */
    static List<String> of(List<Path> folders, String what) {
        List<Path> absolute = new ArrayList<>();
        for (Path folder : folders) {
            Path a = folder.toAbsolutePath().normalize();
            if (absolute.contains(a)) {
                throw new ModException(what + " " + folder + " is given twice");
            }
            absolute.add(a);
        }
        List<String> labels = new ArrayList<>();
        for (Path a : absolute) {
            int depth = 1;
            while (depth < a.getNameCount() && clashes(a, depth, absolute)) {
                depth++;
            }
            labels.add(suffix(a, depth));
        }
        return labels;
    }

    /** Whether another folder ends in the same `depth` names as this one. */
    private static boolean clashes(Path folder, int depth, List<Path> all) {
        return all.stream().anyMatch(other -> !other.equals(folder) && suffix(other, depth).equals(suffix(folder, depth)));
    }

    private static String suffix(Path a, int depth) {
        int names = a.getNameCount();
        return names == 0 ? a.toString() : a.subpath(Math.max(0, names - depth), names).toString();
    }
}
