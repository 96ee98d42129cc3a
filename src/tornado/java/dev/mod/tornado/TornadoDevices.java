package dev.mod.tornado;

import uk.ac.manchester.tornado.api.TornadoBackend;
import uk.ac.manchester.tornado.api.TornadoRuntime;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.runtime.TornadoRuntimeProvider;

import java.util.ArrayList;
import java.util.List;

/** The devices TornadoVM sees, as backend:device indices for tornado-config and --device. */
public final class TornadoDevices {
    private TornadoDevices() {
    }

    /** One line per device: "tornado:B:D  name (backend)". */
    public static List<String> describe() {
        TornadoRuntime runtime = TornadoRuntimeProvider.getTornadoRuntime();
        List<String> lines = new ArrayList<>();
        for (int b = 0; b < runtime.getNumBackends(); b++) {
            TornadoBackend backend = runtime.getBackend(b);
            for (int d = 0; d < backend.getNumDevices(); d++) {
                TornadoDevice device = backend.getDevice(d);
                lines.add(String.format("tornado:%d:%d  %s (%s)", b, d, device.getPhysicalDevice().getDeviceName(),
                        backend.getName()));
            }
        }
        return lines;
    }
}
