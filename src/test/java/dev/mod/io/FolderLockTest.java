package dev.mod.io;

import dev.mod.ModException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** One writer per folder across processes: another JVM holding the folder refuses this one, and its end frees it. */
class FolderLockTest {
    @TempDir
    Path dir;

    /** Run in a JVM of its own: holds the folder in args[0] until its standard input ends. */
    public static void main(String[] args) throws Exception {
        try (FolderLock held = FolderLock.acquire(Path.of(args[0]), "study")) {
            System.out.println("held");
            System.out.flush();
            System.in.read();
        }
    }

    @Test
    void anotherProcessHoldingTheFolderIsNamedAndItsEndFreesIt() throws Exception {
        Path folder = Files.createDirectories(dir.resolve("run"));
        Process other = new ProcessBuilder(List.of(ProcessHandle.current().info().command().orElseThrow(), "-cp",
                System.getProperty("java.class.path"), FolderLockTest.class.getName(), folder.toString())).start();
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(other.getInputStream(), StandardCharsets.UTF_8));
            assertEquals("held", out.readLine());
            ModException e = assertThrows(ModException.class, () -> FolderLock.acquire(folder, "training run"));
            assertTrue(e.getMessage().contains("is in use by a study (process " + other.pid() + ")"), e.getMessage());
        } finally {
            other.getOutputStream().close();
            other.waitFor();
        }
        try (FolderLock mine = FolderLock.acquire(folder, "training run")) {
            assertTrue(Files.exists(folder.resolve(FolderLock.FILE)));
        }
    }

    @Test
    void aFolderTheLockMadeAndNothingWroteToIsRemovedAgain() {
        Path fresh = dir.resolve("fresh");
        try (FolderLock lock = FolderLock.acquire(fresh, "study")) {
            assertTrue(Files.isDirectory(fresh));
        }
        assertFalse(Files.exists(fresh), "an empty folder the lock made is not left behind");
    }
}
