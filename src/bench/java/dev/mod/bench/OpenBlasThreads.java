package dev.mod.bench;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * Sets OpenBLAS's thread count from Java (openblas_set_num_threads), so that the native anchor runs
 * on the same number of threads as the project's kernels in the same JMH run.
 */
final class OpenBlasThreads {
    private OpenBlasThreads() {
    }

    static void set(int threads) {
        for (String lib : new String[] {"libopenblas.so.0", "libblas.so.3"}) {
            Optional<MethodHandle> setter = find(lib);
            if (setter.isPresent()) {
                try {
                    setter.get().invokeExact(threads);
                    return;
                } catch (Throwable e) {
                    throw new IllegalStateException("openblas_set_num_threads failed", e);
                }
            }
        }
        throw new IllegalStateException("OpenBLAS not found (install libopenblas0-pthread)");
    }

    private static Optional<MethodHandle> find(String lib) {
        try {
            SymbolLookup lookup = SymbolLookup.libraryLookup(lib, java.lang.foreign.Arena.global());
            return lookup.find("openblas_set_num_threads").map(address -> Linker.nativeLinker()
                    .downcallHandle(address, FunctionDescriptor.ofVoid(ValueLayout.JAVA_INT)));
        } catch (IllegalArgumentException e) {
            return Optional.empty();
        }
    }
}
