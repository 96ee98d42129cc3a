package dev.mod.tornado;

import dev.mod.ModException;
import dev.mod.backend.Backend;
import uk.ac.manchester.tornado.api.TornadoRuntime;
import uk.ac.manchester.tornado.api.common.TornadoDevice;
import uk.ac.manchester.tornado.api.runtime.TornadoRuntimeProvider;

import java.util.ArrayList;
import java.util.List;

/** The devices TornadoVM sees, as backend:device indices for tornado-config and --device. */
public final class TornadoDevices {
    private TornadoDevices() {
    }

    /** The devices' ids, "tornado:B:D", as --devices takes them. */
    public static List<String> ids() {
        TornadoRuntime runtime = TornadoRuntimeProvider.getTornadoRuntime();
        List<String> ids = new ArrayList<>();
        for (int b = 0; b < runtime.getNumBackends(); b++) {
            for (int d = 0; d < runtime.getBackend(b).getNumDevices(); d++) {
                ids.add("tornado:" + b + ":" + d);
            }
        }
        return ids;
    }

    /** The device "B:D", or a one-line error naming the devices there are. */
    static TornadoDevice device(String id) {
        return device(id, "device");
    }

    /** The device "B:D" that the setting {@code what} names, or a one-line error naming the devices there are. */
    static TornadoDevice device(String id, String what) {
        String[] parts = id.trim().split(":", -1);
        TornadoRuntime runtime = TornadoRuntimeProvider.getTornadoRuntime();
        if (parts.length == 2 && parts[0].matches("[0-9]{1,3}") && parts[1].matches("[0-9]{1,3}")) {
            int b = Integer.parseInt(parts[0]);
            int d = Integer.parseInt(parts[1]);
            if (b < runtime.getNumBackends() && d < runtime.getBackend(b).getNumDevices()) {
                return runtime.getBackend(b).getDevice(d);
            }
            throw new ModException(what + "=" + id + ": no such TornadoVM device (devices: " + String.join(", ", ids()) + ")");
        }
        throw new ModException(what + "=" + id + ": a TornadoVM device is B:D, backend and device index (devices: "
                + String.join(", ", ids()) + ")");
    }

    /** Every device as the backend lists it: "tornado:B:D", and its name and TornadoVM backend. */
    static List<Backend.Device> describe() {
        TornadoRuntime runtime = TornadoRuntimeProvider.getTornadoRuntime();
        List<Backend.Device> devices = new ArrayList<>();
        for (int b = 0; b < runtime.getNumBackends(); b++) {
            var backend = runtime.getBackend(b);
            for (int d = 0; d < backend.getNumDevices(); d++) {
                TornadoDevice device = backend.getDevice(d);
                devices.add(new Backend.Device("tornado:" + b + ":" + d,
                        device.getPhysicalDevice().getDeviceName() + " (" + backend.getName() + ")"));
            }
        }
        return devices;
    }
}
