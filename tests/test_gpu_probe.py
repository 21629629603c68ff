"""The NVML sampler against a test double of the pynvml binding: values converted to the record's
units, refused fields absent (never a crash), throttle reasons decoded, the source chosen."""

import queue

import pytest
from nvml_double.pynvml import FakeNvml

from gpu_probe import ProbeError, check_interval, ticks
from gpu_probe.nvml import NvmlSampler, decode_throttle_reasons
from gpu_probe.server import Broadcast
from gpu_probe.sources import nvml_sampler, open_source

MB = 1024 * 1024
FULL = {
    "name": "NVIDIA L4",
    "util": (87, 41),
    "mem": (6144 * MB, 23034 * MB),
    "procs": [(101, 5000 * MB), (202, 300 * MB)],
    "power_mw": 61_250,
    "limit_mw": 72_000,
    "temp": 71,
    "sm_mhz": 2040,
    "mem_mhz": 6250,
    "reasons": 0x4 | 0x40,
    "pcie": (3, 4, 8, 16),
    "tx_kb_s": 2048,
    "rx_kb_s": 10240,
    "fan": 55,
}
# a datacenter card in a container: no fan, no process list, no PCIe counters, no clock reasons
SPARSE = {
    "name": b"NVIDIA H100 80GB HBM3",
    "util": (3, 0),
    "mem": (512 * MB, 81559 * MB),
    "power_mw": 70_000,
    "limit_mw": 700_000,
    "temp": 33,
    "sm_mhz": 345,
    "mem_mhz": 2619,
    "pcie": (5, 5, 16, 16),
}


def sampler(*devices, comfy=frozenset({101})):
    return NvmlSampler(FakeNvml(list(devices)), find_comfy_pids=lambda: set(comfy))


def test_every_field_in_the_records_units():
    (record,) = sampler(FULL).sample()
    assert record["kind"] == "gpu" and record["source"] == "nvml" and record["gpu"] == 0
    assert record["name"] == "NVIDIA L4"
    assert (record["util_gpu"], record["util_mem"]) == (87, 41)
    assert (record["mem_used_mb"], record["mem_total_mb"]) == (6144, 23034)
    assert record["comfy_mem_mb"] == 5000, "only ComfyUI's processes count"
    assert (record["power_w"], record["power_limit_w"]) == (61.25, 72.0)
    assert (record["temp_c"], record["sm_clock_mhz"], record["mem_clock_mhz"]) == (71, 2040, 6250)
    assert record["throttle_reasons"] == ["sw_power_cap", "hw_thermal_slowdown"]
    assert (record["pcie_gen"], record["pcie_gen_max"], record["pcie_width"], record["pcie_width_max"]) == (3, 4, 8, 16)
    assert (record["pcie_tx_mb_s"], record["pcie_rx_mb_s"]) == (2.0, 10.0)
    assert record["fan_pct"] == 55
    assert list(record)[0] == "kind", "kind first, as every record in the run folder"


def test_refused_fields_are_absent_and_the_other_gpu_still_counts():
    full, sparse = sampler(FULL, SPARSE).sample()
    assert full["fan_pct"] == 55 and sparse["gpu"] == 1
    assert sparse["name"] == "NVIDIA H100 80GB HBM3", "bytes names (older bindings) are decoded"
    for absent in ("fan_pct", "comfy_mem_mb", "pcie_tx_mb_s", "pcie_rx_mb_s", "throttle_reasons"):
        assert absent not in sparse, absent
    assert sparse["util_gpu"] == 3 and sparse["pcie_gen"] == 5 and sparse["power_limit_w"] == 700.0


def test_no_comfyui_process_means_absent_not_zero():
    (record,) = sampler(FULL, comfy=set()).sample()
    assert "comfy_mem_mb" not in record


def test_a_lost_gpu_gives_a_bare_record_not_a_crash():
    lost = dict(FULL, lost=True)
    records = sampler(FULL, lost).sample()
    assert records[0]["util_gpu"] == 87
    assert set(records[1]) == {"kind", "ts", "source", "gpu"}


def test_throttle_reasons_decoded_unknown_bits_named():
    assert decode_throttle_reasons(0) == []
    assert decode_throttle_reasons(0x1) == ["gpu_idle"]
    assert decode_throttle_reasons(0x8 | 0x1000) == ["hw_slowdown", "unknown_0x1000"]


def test_close_shuts_nvml_down():
    double = FakeNvml([FULL])
    s = NvmlSampler(double, find_comfy_pids=None)
    assert double.initialised == 1
    s.close()
    assert double.initialised == 0


def test_no_driver_or_no_gpu_is_a_reason_not_an_exception():
    sampler_, why = nvml_sampler(FakeNvml([FULL], init_error=9))
    assert sampler_ is None and why == "NVML: Driver Not Loaded"
    sampler_, why = nvml_sampler(FakeNvml([]))
    assert sampler_ is None and "Not Found" in why


def test_open_source_prefers_nvml_and_says_so_in_one_line():
    found, line = open_source("http://127.0.0.1:9", try_nvml=lambda: nvml_sampler(FakeNvml([FULL, SPARSE])))
    assert found.source == "nvml" and "2 GPU(s): NVIDIA L4, NVIDIA H100" in line and "\n" not in line
    none, line = open_source(None, try_nvml=lambda: nvml_sampler(FakeNvml([], init_error=12)))
    assert none is None and "no GPU data" in line and "Library Not Found" in line


def test_unreachable_fallback_is_no_source():
    none, line = open_source("http://127.0.0.1:9", try_nvml=lambda: (None, "NVML: test"))
    assert none is None and "does not answer" in line


def test_interval_at_most_10_hz():
    assert check_interval(0.1) == 0.1
    with pytest.raises(ProbeError, match="at most 10 Hz"):
        check_interval(0.05)


def test_ticks_keep_a_fixed_schedule():
    """A slow sample does not push later ticks back: sleeps shrink to keep the schedule."""
    clock = [1000.0]
    sleeps = []

    def sleep(s):
        sleeps.append(s)
        clock[0] += s

    import gpu_probe

    real_time = gpu_probe.time.time
    gpu_probe.time.time = lambda: clock[0]
    try:
        for n, _ in enumerate(ticks(1.0, sleep)):
            clock[0] += 0.25  # the sample takes a quarter second
            if n == 3:
                break
    finally:
        gpu_probe.time.time = real_time
    assert sleeps == [0.75, 0.75, 0.75]


def test_broadcast_drops_a_reader_that_falls_behind():
    b = Broadcast()
    slow = b.subscribe()
    for i in range(1200):
        b.publish({"gpu": 0, "ts": i})
    assert slow not in b.subscribers
    items = []
    while True:
        try:
            items.append(slow.get_nowait())
        except queue.Empty:
            break
    assert items[-1] is None, "the reader is told to end (and reconnect)"
    fresh = b.subscribe()
    assert fresh.get_nowait() == {"gpu": 0, "ts": 1199}, "a new reader starts from the newest sample"
