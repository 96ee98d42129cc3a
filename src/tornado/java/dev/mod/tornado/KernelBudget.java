package dev.mod.tornado;

import dev.mod.ModException;
import uk.ac.manchester.tornado.api.common.TornadoDevice;

/**
 * A device's work-group limits as OpenCL states them (local memory, items per group, items along each dimension),
 * and what each kernel with fixed work-groups asks of them. A kernel's local memory is what it declares plus the 8
 * bytes TornadoVM's OpenCL driver gives every kernel (an unused local argument, OCLKernel.setArgUnused): a kernel
 * declaring exactly the device's local memory fails to launch. A work-group larger than the device takes is not
 * refused by TornadoVM either: it launches with a size of the driver's choosing, and these kernels depend on theirs.
 */
record KernelBudget(String device, long localBytes, long groupItems, long[] itemsPerDimension) {
    static final long TORNADO_LOCAL_ARGUMENT = 8;

    /** What a kernel asks of a work-group: its items along x and y and the local memory it declares. */
    record Need(String kernel, long x, long y, long declaredBytes) {
        long items() {
            return x * y;
        }

        long localBytes() {
            return declaredBytes + TORNADO_LOCAL_ARGUMENT;
        }
    }

    static final Need ATTENTION = new Need("attention", AttentionKernels.QUERIES, 1, AttentionKernels.ATTENTION_LOCAL_BYTES);
    static final Need CACHE_ATTENTION = new Need("cache attention", AttentionKernels.SPLIT, 1,
            AttentionKernels.CACHE_ATTENTION_LOCAL_BYTES);
    static final Need RMSNORM = new Need("rmsnorm", TornadoKernels.ROW_GROUP, 1, (long) TornadoKernels.ROW_GROUP * Float.BYTES);
    static final Need ROUTE = new Need("route", CausalKernels.GROUP, 1, 0);
    static final Need TILED_PRODUCT = new Need("tiled product", MatmulKernels.TILE_ITEMS, MatmulKernels.TILE_ITEMS,
            2L * MatmulKernels.TILE_K * (MatmulKernels.TILE + 1) * Float.BYTES);
    static final Need VECTOR_PRODUCT = new Need("vector product", MatmulKernels.VECTOR_ITEMS, 1,
            2L * MatmulKernels.VECTOR_ROWS * MatmulKernels.VECTOR_ITEMS * Float.BYTES);

    static KernelBudget of(TornadoDevice device) {
        return new KernelBudget(device.getPhysicalDevice().getDeviceName(), device.getDeviceLocalMemorySize(),
                device.getPhysicalDevice().getDeviceMaxWorkGroupSize()[0], device.getDeviceMaxWorkgroupDimensions());
    }

    /** The most items a one-dimensional work-group can have here. */
    long mostItems() {
        return Math.min(groupItems, itemsPerDimension[0]);
    }

    /** Why the device cannot run the kernel's work-groups; null when it can. */
    String shortfall(Need need) {
        if (need.localBytes() > localBytes) {
            return "the " + need.kernel() + " kernel needs " + need.localBytes() + " bytes of local memory; " + device + " has "
                    + localBytes;
        }
        long y = itemsPerDimension.length > 1 ? itemsPerDimension[1] : 1;
        if (need.items() > groupItems || need.x() > itemsPerDimension[0] || need.y() > y) {
            return "the " + need.kernel() + " kernel runs work-groups of " + need.items() + " items (" + need.x() + " x "
                    + need.y() + "); " + device + " takes at most " + groupItems;
        }
        return null;
    }

    boolean fits(Need need) {
        return shortfall(need) == null;
    }

    /** Refuses, in one line and before anything runs, a kernel the device cannot run. */
    void require(Need need) {
        String why = shortfall(need);
        if (why != null) {
            throw new ModException(why);
        }
    }
}
