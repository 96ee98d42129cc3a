package dev.mod.tornado;

import dev.mod.ModException;
import dev.mod.model.ModelConfig;
import dev.mod.model.Rope;
import dev.mod.model.Tensor;
import uk.ac.manchester.tornado.api.KernelContext;
import uk.ac.manchester.tornado.api.TornadoExecutionPlan;
import uk.ac.manchester.tornado.api.TornadoExecutionResult;
import uk.ac.manchester.tornado.api.WorkerGrid;
import uk.ac.manchester.tornado.api.WorkerGrid1D;
import uk.ac.manchester.tornado.api.WorkerGrid2D;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.common.TornadoFunctions.Task16;
import uk.ac.manchester.tornado.api.enums.TornadoDeviceType;
import uk.ac.manchester.tornado.api.exceptions.TornadoBailoutRuntimeException;
import uk.ac.manchester.tornado.api.runtime.TornadoRuntimeProvider;
import uk.ac.manchester.tornado.api.types.arrays.FloatArray;
import uk.ac.manchester.tornado.api.types.arrays.IntArray;

import java.util.List;
import java.util.Locale;

/**
 * What both TornadoVM plans (the forward pass and the causal plan for generation) build their graphs from: the
 * device they run on and tornado-config's placement, device buffers (counted, so that the plan can be checked
 * against the device's memory), weights in the layouts the kernels read, and the two tasks every layer has
 * several of: matrix products in the layout the device or tornado-config picks, and RMSNorm.
 */
final class StageTasks {
    private final ModelConfig config;
    final TornadoDevice device;
    final boolean cpuDevice;
    final TornadoPlacement placement;
    /** The device's work-group limits, against which every kernel's work-groups are checked. */
    private final KernelBudget budget;
    /** Bytes of every buffer made here: what the plan keeps on the device. */
    private long deviceBytes;

    /**
     * @param deviceName "B:D", or null for tornado-config's mod.tornado.device, else TornadoVM's default
     */
    StageTasks(ModelConfig config, String deviceName) {
        this.config = config;
        this.placement = TornadoPlacement.read(System.getProperties());
        this.device = device(deviceName, placement);
        this.cpuDevice = device.getDeviceType() == TornadoDeviceType.CPU;
        DriverErrors.get();
        this.budget = KernelBudget.of(device);
        for (KernelBudget.Need need : List.of(KernelBudget.ATTENTION, KernelBudget.CACHE_ATTENTION, KernelBudget.RMSNORM,
                KernelBudget.ROUTE)) {
            budget.require(need);
        }
        if (config.headDim() > AttentionKernels.MAX_HEAD_DIM || config.headDim() % 2 != 0) {
            throw new ModException("the tornado backend takes even head sizes up to " + AttentionKernels.MAX_HEAD_DIM
                    + ", this model's is " + config.headDim());
        }
    }

    /** The device "B:D" names, or for null tornado-config's mod.tornado.device, else TornadoVM's default. */
    static TornadoDevice device(String deviceName, TornadoPlacement placement) {
        String chosen = deviceName != null ? deviceName : placement.device();
        return chosen != null ? TornadoDevices.device(chosen, deviceName != null ? "device" : "tornado-config: " + TornadoPlacement.PREFIX + "device")
                : TornadoRuntimeProvider.getTornadoRuntime().getDefaultDevice();
    }

    /**
     * The buffers and settings of a product's epilogue (MatmulKernels): extra, map and gains are read only
     * by the RESIDUAL epilogue, but every task names them, so tasks that do not use them pass the layer's own.
     */
    record Epilogue(int mode, FloatArray extra, IntArray map, FloatArray gains, int width, int seqLen, int perSeq, int gainMode) {
    }

    /** The signature the three layouts of MatmulKernels share. */
    interface ProductKernel extends Task16<KernelContext, FloatArray, FloatArray, FloatArray, FloatArray, IntArray, FloatArray,
            IntArray, Integer, Integer, Integer, Integer, Integer, Integer, Integer, Integer> {
    }

    /**
     * Adds out = x[rows, in] . w[outDim, in]^T with its epilogue as a product task in the layout tornado-config or
     * the device picks; live[0] rows of the `rows` the grid is made for are there in a run.
     */
    void matmul(GraphSpec g, String task, FloatArray in, FloatArray w, FloatArray out, IntArray live, int rows, int inDim, int outDim,
                Epilogue e) {
        String name = g.name + "." + task;
        String layout = placement.layoutOf(name, cpuDevice, rows, l -> budget.fits(need(l)));
        if (!layout.equals("rows") && placement.local().containsKey(name)) {
            throw new ModException("tornado-config: " + TornadoPlacement.PREFIX + name + ".local: the " + layout
                    + " layout's work-groups are fixed by its kernel; .local sets the rows layout's");
        }
        WorkerGrid grid;
        ProductKernel kernel;
        GraphSpec.RowGrid forRows;
        if (!layout.equals("rows")) {
            String why = budget.shortfall(need(layout));
            if (why != null) {
                throw new ModException("tornado-config: " + TornadoPlacement.PREFIX + name + ": " + why + "; use "
                        + TornadoPlacement.PREFIX + name + ".matmul=rows");
            }
        }
        if (layout.equals("vector")) {
            if (rows > MatmulKernels.VECTOR_ROWS) {
                throw new ModException("tornado-config: " + TornadoPlacement.PREFIX + name + ": the vector layout takes at most "
                        + MatmulKernels.VECTOR_ROWS + " rows, this product has " + rows);
            }
            long items = (long) ceilDiv(outDim, 2 * MatmulKernels.PAIR) * MatmulKernels.PAIR * MatmulKernels.VECTOR_ITEMS;
            grid = new WorkerGrid1D((int) items);
            grid.setLocalWork(MatmulKernels.VECTOR_ITEMS, 1, 1);
            forRows = n -> grid.setGlobalWork(items, 1, 1);
            kernel = MatmulKernels::matmulVector;
        } else if (layout.equals("tiled")) {
            long x = (long) ceilDiv(outDim, MatmulKernels.TILE) * MatmulKernels.TILE_ITEMS;
            grid = new WorkerGrid2D((int) x, ceilDiv(rows, MatmulKernels.TILE) * MatmulKernels.TILE_ITEMS);
            grid.setLocalWork(MatmulKernels.TILE_ITEMS, MatmulKernels.TILE_ITEMS, 1);
            forRows = n -> grid.setGlobalWork(x, (long) ceilDiv(n, MatmulKernels.TILE) * MatmulKernels.TILE_ITEMS, 1);
            kernel = MatmulKernels::matmulTiled;
        } else {
            int pairs = ceilDiv(outDim, 2 * MatmulKernels.PAIR) * MatmulKernels.PAIR;
            int local = placement.local().getOrDefault(name, (int) Math.min(64, budget.mostItems()));
            if (local > budget.mostItems()) {
                throw new ModException("tornado-config: " + TornadoPlacement.PREFIX + name + ".local=" + local + ": "
                        + budget.device() + " takes work-groups of at most " + budget.mostItems() + " items");
            }
            long x = (long) ceilDiv(pairs, local) * local;
            grid = new WorkerGrid2D((int) x, ceilDiv(rows, MatmulKernels.ROWS_PER_ITEM));
            grid.setLocalWork(local, 1, 1);
            forRows = n -> grid.setGlobalWork(x, ceilDiv(n, MatmulKernels.ROWS_PER_ITEM), 1);
            kernel = MatmulKernels::matmulRows;
        }
        g.task(task, grid, forRows, t -> t.task(task, kernel, new KernelContext(), in, w, out, e.extra(), e.map(), e.gains(), live,
                rows, inDim, outDim, e.mode(), e.width(), e.seqLen(), e.perSeq(), e.gainMode()), in, w, out, e.extra(), e.map(), e.gains(), live);
        g.products.add(task);
    }

    /** What a product layout's kernel asks of a work-group. */
    private static KernelBudget.Need need(String layout) {
        return layout.equals("tiled") ? KernelBudget.TILED_PRODUCT : KernelBudget.VECTOR_PRODUCT;
    }

    /**
     * Runs graph `index` of the plan. TornadoVM reports every failure to prepare a graph (a kernel it cannot compile,
     * more tasks than its bytecode buffer, tornado.tvm.maxbytecodesize, holds) as one bail-out without its cause; this
     * names the graph and where to look instead.
     */
    TornadoExecutionResult execute(TornadoExecutionPlan plan, int index, String graph) {
        try {
            return plan.withGraph(index).execute();
        } catch (TornadoBailoutRuntimeException e) {
            throw new ModException("tornado: TornadoVM could not run graph " + graph + " on " + device.getPhysicalDevice().getDeviceName()
                    + " and does not say why (a kernel it cannot compile, or more tasks than tornado.tvm.maxbytecodesize holds); "
                    + "run with MOD_JAVA_OPTS=-Dtornado.debug=True to see how far it got", e);
        }
    }

    /** Fails with one line if TornadoVM's driver reported a failed call (a launch, a build, a transfer) since the last check. */
    void checkDriver(String what) {
        DriverErrors watch = DriverErrors.get();
        if (watch != null) {
            watch.check(what, device.getPhysicalDevice().getDeviceName());
        }
    }

    /**
     * Adds out[rows, d] = RMSNorm(x[t] (+ extra[r])) * w as a task with one work-group per row, t = (r / perSeq) * seqLen
     * + map[r] (TornadoKernels.rmsnorm); live[0] of the rows are there in a run.
     */
    void rmsnorm(GraphSpec g, String task, FloatArray x, FloatArray w, IntArray map, FloatArray extra, FloatArray out, IntArray live,
                 int add, int rows, int seqLen, int perSeq) {
        int d = config.dim();
        float eps = (float) config.normEps();
        WorkerGrid grid = new WorkerGrid1D(rows * TornadoKernels.ROW_GROUP);
        grid.setLocalWork(TornadoKernels.ROW_GROUP, 1, 1);
        g.task(task, grid, n -> grid.setGlobalWork((long) n * TornadoKernels.ROW_GROUP, 1, 1),
                t -> t.task(task, TornadoKernels::rmsnorm, new KernelContext(), x, map, extra, w, out, live, d, eps, seqLen, perSeq, add),
                x, map, extra, w, out, live);
    }

    static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }

    /** A tensor as F32 in TornadoVM's off-heap array, to be moved to the device on the first run. */
    FloatArray floats(Tensor t) {
        FloatArray a = floats(Math.toIntExact(t.numel()));
        for (int i = 0; i < a.getSize(); i++) {
            a.set(i, t.get(i));
        }
        return a;
    }

    /** Weights [rows of a; rows of b; ...] concatenated: one product instead of several. */
    FloatArray concatenated(Tensor... parts) {
        long total = 0;
        for (Tensor t : parts) {
            total += t.numel();
        }
        FloatArray a = floats(Math.toIntExact(total));
        int at = 0;
        for (Tensor t : parts) {
            for (int i = 0; i < t.numel(); i++) {
                a.set(at++, t.get(i));
            }
        }
        return a;
    }

    /**
     * w1 and w3 [F, d] as one weight [2 * F', d] (F' = F rounded up to PAIR, padding rows zero): PAIR rows of w1,
     * then the same PAIR rows of w3, in turn, as the SwiGLU epilogue reads them (MatmulKernels).
     */
    FloatArray gateUpInterleaved(Tensor w1, Tensor w3) {
        int d = config.dim();
        int f = Math.toIntExact(w1.numel() / d);
        int pair = MatmulKernels.PAIR;
        FloatArray a = floats(gateUpColumns(f) * d);
        a.init(0f);
        for (int j = 0; j < f; j++) {
            int gateRow = (j / pair) * 2 * pair + j % pair;
            for (int i = 0; i < d; i++) {
                a.set(gateRow * d + i, w1.get((long) j * d + i));
                a.set((gateRow + pair) * d + i, w3.get((long) j * d + i));
            }
        }
        return a;
    }

    /** Columns of the fused w1/w3 product of hidden size f (the gate and up rows, each padded to PAIR). */
    static int gateUpColumns(int f) {
        return 2 * ceilDiv(f, MatmulKernels.PAIR) * MatmulKernels.PAIR;
    }

    /** cos and sin [positions, dh/2] of RoPE's angles: a table per position, read by the rope kernels. */
    FloatArray[] ropeTables(int positions) {
        int size = positions * (config.headDim() / 2);
        float[] cos = new float[size];
        float[] sin = new float[size];
        Rope.fill(cos, sin, config.ropeTheta(), config.headDim(), 0, positions);
        FloatArray[] tables = {floats(size), floats(size)};
        for (int i = 0; i < size; i++) {
            tables[0].set(i, cos[i]);
            tables[1].set(i, sin[i]);
        }
        return tables;
    }

    FloatArray floats(int n) {
        deviceBytes += (long) n * Float.BYTES;
        return new FloatArray(n);
    }

    IntArray ints(int n) {
        deviceBytes += (long) n * Integer.BYTES;
        return new IntArray(n);
    }

    /** A one-int buffer holding n: live[0] of a task whose rows are all there in every run. */
    IntArray count(int n) {
        IntArray a = ints(1);
        a.set(0, n);
        return a;
    }

    long deviceBytes() {
        return deviceBytes;
    }

    /**
     * The plan's buffers against the device: all of them within its global memory and TornadoVM's limit
     * (tornado.device.memory, 4 GB unless set), the largest within one allocation.
     */
    void checkDeviceMemory(long largestBytes) {
        checkMemory(device, deviceBytes, Math.max(largestBytes, (long) config.vocabSize() * config.dim() * Float.BYTES));
    }

    /** A one-line refusal, before anything is allocated, of a plan whose buffers the device cannot hold. */
    static void checkMemory(TornadoDevice device, long deviceBytes, long largest) {
        String name = device.getPhysicalDevice().getDeviceName();
        long global = device.getPhysicalDevice().getDeviceGlobalMemorySize();
        if (deviceBytes > global) {
            throw new ModException("the plan needs " + mib(deviceBytes) + " of device memory; " + name + " has " + mib(global));
        }
        if (largest > device.getMaxAllocMemory()) {
            throw new ModException("the plan's largest buffer is " + mib(largest) + "; " + name + " allocates at most " + mib(device.getMaxAllocMemory())
                    + " at once");
        }
        long limit = TornadoMemoryLimit.bytes();
        if (deviceBytes > limit) {
            throw new ModException("the plan needs " + mib(deviceBytes) + " of device memory, above TornadoVM's limit of " + mib(limit)
                    + ": set tornado.device.memory (for example " + ceilDiv((int) (deviceBytes >> 20), 1024) + "GB) in tornado-config");
        }
    }

    private static String mib(long bytes) {
        return String.format(Locale.ROOT, "%.1f MiB", bytes / 1048576.0);
    }
}
