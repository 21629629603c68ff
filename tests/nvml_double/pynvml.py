"""A test double of the pynvml binding (nvidia-ml-py), at its interface: the functions and
exception classes gpu_probe calls, answering from a table of devices. A field missing from a
device's table raises NVMLError_NotSupported, as NVML does for a fan on a datacenter card.

In-process: `FakeNvml(devices)` is passed where the module would be. In a subprocess: put this
folder first on PYTHONPATH and the table (JSON) in NVML_DOUBLE; `import pynvml` then gets it."""

import json
import os
from types import SimpleNamespace

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM, NVML_CLOCK_MEM = 1, 2
NVML_PCIE_UTIL_TX_BYTES, NVML_PCIE_UTIL_RX_BYTES = 0, 1


class NVMLError(Exception):
    MESSAGES = {
        3: "Not Supported",
        4: "Insufficient Permissions",
        6: "Not Found",
        9: "Driver Not Loaded",
        12: "NVML Shared Library Not Found",
        15: "GPU is lost",
    }

    def __init__(self, value):
        super().__init__(value)
        self.value = value

    def __str__(self):
        return self.MESSAGES.get(self.value, f"Unknown Error {self.value}")


class NVMLError_NotSupported(NVMLError):
    def __init__(self):
        super().__init__(3)


class FakeNvml:
    NVMLError = NVMLError
    NVMLError_NotSupported = NVMLError_NotSupported

    def __init__(self, devices, init_error=None):
        self.devices = devices  # list of dicts, see DEVICE in test_gpu_probe.py
        self.init_error = init_error  # an NVML error code nvmlInit raises
        self.initialised = 0
        self.calls = []

    def _field(self, handle, key):
        self.calls.append((handle, key))
        if not self.initialised:
            raise NVMLError(1)  # uninitialised
        device = self.devices[handle]
        if device.get("lost"):
            raise NVMLError(15)
        if key not in device:
            raise NVMLError_NotSupported()
        return device[key]

    def nvmlInit(self):
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.initialised += 1

    def nvmlShutdown(self):
        self.initialised -= 1

    def nvmlDeviceGetCount(self):
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetName(self, h):
        return self._field(h, "name")

    def nvmlDeviceGetUtilizationRates(self, h):
        gpu, memory = self._field(h, "util")
        return SimpleNamespace(gpu=gpu, memory=memory)

    def nvmlDeviceGetMemoryInfo(self, h):
        used, total = self._field(h, "mem")
        return SimpleNamespace(used=used, total=total, free=total - used)

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        return [SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in self._field(h, "procs")]

    def nvmlDeviceGetPowerUsage(self, h):
        return self._field(h, "power_mw")

    def nvmlDeviceGetEnforcedPowerLimit(self, h):
        return self._field(h, "limit_mw")

    def nvmlDeviceGetTemperature(self, h, sensor):
        assert sensor == NVML_TEMPERATURE_GPU
        return self._field(h, "temp")

    def nvmlDeviceGetClockInfo(self, h, clock):
        return self._field(h, {NVML_CLOCK_SM: "sm_mhz", NVML_CLOCK_MEM: "mem_mhz"}[clock])

    def nvmlDeviceGetCurrentClocksEventReasons(self, h):
        return self._field(h, "reasons")

    def nvmlDeviceGetCurrPcieLinkGeneration(self, h):
        return self._field(h, "pcie")[0]

    def nvmlDeviceGetMaxPcieLinkGeneration(self, h):
        return self._field(h, "pcie")[1]

    def nvmlDeviceGetCurrPcieLinkWidth(self, h):
        return self._field(h, "pcie")[2]

    def nvmlDeviceGetMaxPcieLinkWidth(self, h):
        return self._field(h, "pcie")[3]

    def nvmlDeviceGetPcieThroughput(self, h, counter):
        return self._field(h, {NVML_PCIE_UTIL_TX_BYTES: "tx_kb_s", NVML_PCIE_UTIL_RX_BYTES: "rx_kb_s"}[counter])

    def nvmlDeviceGetFanSpeed(self, h):
        return self._field(h, "fan")


def _install_from_env():
    """Module-level functions of one FakeNvml built from NVML_DOUBLE, as `import pynvml` expects."""
    spec = json.loads(os.environ.get("NVML_DOUBLE") or "[]")
    double = FakeNvml(spec)
    for name in dir(double):
        if name.startswith("nvml"):
            globals()[name] = getattr(double, name)


_install_from_env()
