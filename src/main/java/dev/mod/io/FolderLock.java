package dev.mod.io;

import dev.mod.ModException;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One writer per folder: a lock file (".mod.lock") held with the operating system's file lock for as long as a run
 * writes there. The system drops the lock when the process ends, however it ends, so a killed run never blocks the
 * next; the file stays, holding the last holder's process id and kind of run, which a refusal names. A folder the lock made and the run
 * left empty (it was refused before writing anything) is removed with the lock file when the lock is released.
 */
public final class FolderLock implements AutoCloseable {
    public static final String FILE = ".mod.lock";
    /**
     * The folders this process holds, by lock file, with their kind of run. A second attempt from this process is refused
     * from here without opening the file: closing another channel on it would drop the process's lock for all.
     */
    private static final Map<Path, String> HELD = new ConcurrentHashMap<>();

    private final Path dir;
    private final Path file;
    private final boolean made;
    private final FileChannel channel;
    private final FileLock lock;

    private FolderLock(Path dir, Path file, boolean made, FileChannel channel, FileLock lock) {
        this.dir = dir;
        this.file = file;
        this.made = made;
        this.channel = channel;
        this.lock = lock;
    }

    /** Takes the folder (made if missing) for a run of the given kind, or refuses in one line naming the process that has it. */
    public static FolderLock acquire(Path dir, String what) {
        requireOwnFolder(dir, what);
        Path file = dir.toAbsolutePath().normalize().resolve(FILE);
        String mine = HELD.putIfAbsent(file, what);
        if (mine != null) {
            throw refusal(dir, ProcessHandle.current().pid() + " " + mine);
        }
        try {
            return lock(dir, file, what);
        } catch (RuntimeException e) {
            HELD.remove(file);
            throw e;
        }
    }

    private static FolderLock lock(Path dir, Path file, String what) {
        FileChannel channel = null;
        boolean made = !Files.isDirectory(dir);
        try {
            Files.createDirectories(dir);
            channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
            FileLock lock;
            lock = channel.tryLock();
            if (lock == null) {
                String holder = holder(channel);
                channel.close();
                throw refusal(dir, holder);
            }
            channel.truncate(0);
            channel.write(ByteBuffer.wrap((ProcessHandle.current().pid() + " " + what).getBytes(StandardCharsets.UTF_8)), 0);
            return new FolderLock(dir, file, made, channel, lock);
        } catch (IOException e) {
            try {
                if (channel != null) {
                    channel.close();
                }
            } catch (IOException ignored) {
                // the error below says what went wrong
            }
            throw new ModException("cannot lock " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Refuses, before anything is written, a run folder that is a file system's root: a run names its files and plots
     * after its folder, and writes beside whatever the root holds.
     */
    public static void requireOwnFolder(Path dir, String what) {
        if (dir.toAbsolutePath().normalize().getFileName() == null) {
            throw new ModException(dir + " is the root of a file system: give the " + what + " a folder of its own");
        }
    }

    // "pid kind" from the lock file, as the one-line refusal
    private static ModException refusal(Path dir, String holder) {
        int space = holder.indexOf(' ');
        String who = space < 0 ? "another run" : "a " + holder.substring(space + 1);
        String process = space < 0 ? holder : holder.substring(0, space);
        return new ModException(dir + " is in use by " + who + (process.isEmpty() ? "" : " (process " + process + ")")
                + ": wait for it to end, or use another folder");
    }

    private static String holder(FileChannel channel) throws IOException {
        ByteBuffer bytes = ByteBuffer.allocate(128);
        int n = channel.read(bytes, 0);
        return n <= 0 ? "" : new String(bytes.array(), 0, n, StandardCharsets.UTF_8).strip();
    }

    @Override
    public void close() {
        try {
            if (made) {
                try (var entries = Files.list(dir)) {
                    if (entries.allMatch(p -> p.getFileName().toString().equals(FILE))) {
                        Files.delete(dir.resolve(FILE));
                        Files.delete(dir);
                    }
                }
            }
            lock.release();
            channel.close();
        } catch (IOException e) {
            throw new ModException("cannot release the lock of a run folder: " + e.getMessage(), e);
        } finally {
            HELD.remove(file);
        }
    }
}
