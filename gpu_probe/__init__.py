"""GPU probe: what the GPU is doing while ComfyUI is under load.

A sample is one dict per GPU per tick, `kind` first so it drops straight into
comfyui_metrics.ndjson: {"kind": "gpu", "ts": epoch_s, "source": "nvml" | "system_stats",
"gpu": index, "name": ..., "util_gpu": ..., "mem_used_mb": ..., ...}. A field the source cannot
give on that GPU is absent from the record, never a crash.

Runs without Locust (`python -m gpu_probe serve|record`) and plugs into it (comfyload/harness/gpu.py)."""

from __future__ import annotations

import time

DEFAULT_INTERVAL_S = 1.0


class ProbeError(ValueError):
    """A bad probe setting or an unusable source: one line for the user, no traceback. The
    probe imports nothing of the harness; the harness's adapter turns this into its own error."""


MIN_INTERVAL_S = 0.1  # 10 Hz: NVML's utilisation counters do not move faster than that


def check_interval(interval: float, flag: str = "--gpu-interval") -> float:
    if not interval >= MIN_INTERVAL_S:
        raise ProbeError(f"{flag} must be >= {MIN_INTERVAL_S} s (at most 10 Hz), not {interval!r}")
    return float(interval)


def ticks(interval: float, sleep=time.sleep, stopped=lambda: False):
    """Yields once per `interval` on a fixed schedule (a slow sample does not shift the next
    ones); after a stall longer than a tick it starts afresh instead of bursting to catch up."""
    next_t = time.time()
    while not stopped():
        yield
        next_t += interval
        delay = next_t - time.time()
        if delay < 0:
            next_t, delay = time.time(), 0.0
        sleep(delay)
