package dev.mod.cli;

import dev.mod.ModException;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** train-plot and study compare label folders apart (they crashed on two folders of one name). */
class FolderLabelsTest {
    @Test
    void foldersOfOneNameAreToldApartByTheirParents() {
        assertEquals(List.of("dense", "mod"), FolderLabels.of(List.of(Path.of("/r/dense"), Path.of("/r/mod")), "run"));
        assertEquals(List.of("a/run", "b/run", "c"), FolderLabels.of(List.of(Path.of("/x/a/run"), Path.of("/x/b/run"), Path.of("/x/c")), "run"));
        assertEquals(List.of("x/a/run", "y/a/run"), FolderLabels.of(List.of(Path.of("/x/a/run"), Path.of("/y/a/run")), "run"));
    }

    @Test
    void theSameFolderTwiceIsAnError() {
        ModException e = assertThrows(ModException.class,
                () -> FolderLabels.of(List.of(Path.of("/r/dense"), Path.of("/r/./dense")), "run"));
        assertEquals("run /r/./dense is given twice", e.getMessage());
    }
}
