"""The NVML sampler: every field of every GPU through the pynvml binding (nvidia-ml-py).

Each field is read on its own: a field NVML refuses on a given GPU (NotSupported on a datacenter
card's fan, NoPermission in a container, a function an old driver lacks) is left out of that
record; the rest of the sample still counts. Calls block in the driver, so inside Locust they
run in a native thread (see comfyload/harness/gpu.py)."""

from __future__ import annotations

import os
import re
import time

MB = 1024 * 1024
# clock event ("throttle") reason bits, as nvml.h defines them
THROTTLE_REASONS = {
    0x001: "gpu_idle",
    0x002: "applications_clocks_setting",
    0x004: "sw_power_cap",
    0x008: "hw_slowdown",
    0x010: "sync_boost",
    0x020: "sw_thermal_slowdown",
    0x040: "hw_thermal_slowdown",
    0x080: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
    0x200: "board_limit",
    0x400: "reliability",
}
COMFY_CMDLINE = re.compile(r"comfy", re.I)  # ComfyUI's main.py lives in a folder named comfyui/ComfyUI
NVML_CLOCK_SM, NVML_CLOCK_MEM = 1, 2
NVML_TEMPERATURE_GPU = 0
NVML_PCIE_UTIL_TX_BYTES, NVML_PCIE_UTIL_RX_BYTES = 0, 1


def decode_throttle_reasons(mask: int) -> list[str]:
    names = [name for bit, name in THROTTLE_REASONS.items() if mask & bit]
    unknown = mask & ~sum(THROTTLE_REASONS)
    return names + ([f"unknown_0x{unknown:x}"] if unknown else [])


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def comfy_pids() -> set[int]:
    """PIDs of local processes whose command line names ComfyUI. NVML reports host PIDs, so in a
    container that does not share them none match and ComfyUI's memory is absent."""
    pids = set()
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if COMFY_CMDLINE.search(f.read().decode(errors="replace")):
                        pids.add(int(entry))
            except OSError:
                continue
    return pids


class NvmlSampler:
    """`nvml` is the pynvml module (or a test double with its interface). Raises the binding's
    NVMLError from __init__ when there is no driver or no GPU."""

    source = "nvml"
    blocking = True  # driver calls: run off the gevent loop

    def __init__(self, nvml=None, find_comfy_pids=comfy_pids):
        if nvml is None:
            import pynvml as nvml
        self.nvml = nvml
        self.find_comfy_pids = find_comfy_pids
        nvml.nvmlInit()
        try:
            self.count = nvml.nvmlDeviceGetCount()
            if self.count < 1:
                raise nvml.NVMLError(6)  # NVML_ERROR_NOT_FOUND
            self.handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(self.count)]
        except Exception:
            nvml.nvmlShutdown()
            raise
        self.names = [self._get(nvml.nvmlDeviceGetName, h) for h in self.handles]

    def describe(self) -> str:
        return f"NVML, {self.count} GPU(s): " + ", ".join(_text(n) for n in self.names if n is not None)

    def _get(self, fn, *args):
        """One NVML call; None when this GPU or this binding refuses it."""
        try:
            return fn(*args)
        except (self.nvml.NVMLError, AttributeError, NotImplementedError):
            return None

    def _call(self, name: str, *args):
        fn = getattr(self.nvml, name, None)
        return None if fn is None else self._get(fn, *args)

    def sample(self) -> list[dict]:
        pids = self.find_comfy_pids() if self.find_comfy_pids else set()
        return [self.sample_gpu(i, h, pids) for i, h in enumerate(self.handles)]

    def sample_gpu(self, index: int, handle, comfy: set) -> dict:
        call = self._call
        record = {"kind": "gpu", "ts": time.time(), "source": self.source, "gpu": index}
        fields = {"name": None if self.names[index] is None else _text(self.names[index])}
        util = call("nvmlDeviceGetUtilizationRates", handle)
        if util is not None:
            fields.update(util_gpu=util.gpu, util_mem=util.memory)
        mem = call("nvmlDeviceGetMemoryInfo", handle)
        if mem is not None:
            fields.update(mem_used_mb=mem.used / MB, mem_total_mb=mem.total / MB)
        procs = call("nvmlDeviceGetComputeRunningProcesses", handle)
        if procs is not None:
            mine = [p.usedGpuMemory for p in procs if p.pid in comfy and p.usedGpuMemory is not None]
            fields["comfy_mem_mb"] = sum(mine) / MB if mine else None
        power, limit = call("nvmlDeviceGetPowerUsage", handle), call("nvmlDeviceGetEnforcedPowerLimit", handle)
        fields.update(
            power_w=None if power is None else power / 1000.0, power_limit_w=None if limit is None else limit / 1000.0
        )
        fields["temp_c"] = call("nvmlDeviceGetTemperature", handle, NVML_TEMPERATURE_GPU)
        fields["sm_clock_mhz"] = call("nvmlDeviceGetClockInfo", handle, NVML_CLOCK_SM)
        fields["mem_clock_mhz"] = call("nvmlDeviceGetClockInfo", handle, NVML_CLOCK_MEM)
        mask = call("nvmlDeviceGetCurrentClocksEventReasons", handle)
        if mask is None:  # bindings before the rename
            mask = call("nvmlDeviceGetCurrentClocksThrottleReasons", handle)
        fields["throttle_reasons"] = None if mask is None else decode_throttle_reasons(mask)
        fields["pcie_gen"] = call("nvmlDeviceGetCurrPcieLinkGeneration", handle)
        fields["pcie_gen_max"] = call("nvmlDeviceGetMaxPcieLinkGeneration", handle)
        fields["pcie_width"] = call("nvmlDeviceGetCurrPcieLinkWidth", handle)
        fields["pcie_width_max"] = call("nvmlDeviceGetMaxPcieLinkWidth", handle)
        tx = call("nvmlDeviceGetPcieThroughput", handle, NVML_PCIE_UTIL_TX_BYTES)  # KB/s over 20 ms
        rx = call("nvmlDeviceGetPcieThroughput", handle, NVML_PCIE_UTIL_RX_BYTES)
        fields.update(
            pcie_tx_mb_s=None if tx is None else tx / 1024.0, pcie_rx_mb_s=None if rx is None else rx / 1024.0
        )
        fields["fan_pct"] = call("nvmlDeviceGetFanSpeed", handle)
        record.update({k: v for k, v in fields.items() if v is not None})
        return record

    def close(self) -> None:
        self._get(self.nvml.nvmlShutdown)
