"""The ComfyLoad tab's data: one JSON document the live page polls every ~2 s.

`snapshot` is a pure function over what a run has so far (records, events, GPU samples, queue
samples) so it is tested without Locust; `LiveState` gathers those on the master (or a local
run): queue depth from ComfyUI's `status` broadcasts (the client keeps `queue_remaining`; a
master without clients asks GET /prompt), events by following the run's NDJSON (drill schedules
write there from another process)."""

from __future__ import annotations

import collections
import json
import time
from pathlib import Path

from comfyload.analysis.buckets import bucket_seconds, bucket_starts, shaded_windows
from comfyload.analysis.live_figures import SLIDING_WINDOWS_S, completed_between, units

QUEUE_SAMPLES = 7200  # 4 h at one sample every 2 s
SAMPLE_EVERY_S = 2.0
GPU_POINTS = 400  # GPU series thinned to this many points per GPU
SOURCE_LABELS = {
    "nvml": "GPU (NVML on the Locust host)",
    "sidecar": "GPU (probe sidecar)",
    "system_stats": "host figures from ComfyUI /system_stats (no NVML here: with --cpu this is host RAM, not VRAM)",
}


def series(units_: list[dict], t0: float, t_end: float, width: int) -> list[dict]:
    """Per bucket of completion time, every bucket from the start to now (zero when nothing
    completed): images/min, exact p50/p95 of the successes, failed %."""
    rows = []
    for start in bucket_starts(t0, t_end, width):
        fig = completed_between(units_, t0 + start, min(t0 + start + width, t_end))  # the last one is still filling
        rows.append(
            {
                "t": start,
                "images_per_min": fig["images_per_min"],
                "p50_s": fig["p50_s"],
                "p95_s": fig["p95_s"],
                "error_pct": fig["error_pct"],
                "completed": fig["completed"],
            }
        )
    return rows


def gpu_view(samples: list[dict], t0: float) -> dict:
    """Latest figures and a thinned series per GPU, each labelled by where they came from."""
    by_gpu = collections.defaultdict(list)
    for s in samples:
        by_gpu[str(s.get("gpu"))].append(s)
    out = {}
    for gpu, rows in sorted(by_gpu.items()):
        step = max(1, len(rows) // GPU_POINTS)
        last = rows[-1]
        source = last.get("source") or "?"
        out[gpu] = {
            "name": last.get("name") or "",
            "source": source,
            "source_label": SOURCE_LABELS.get(source, source),
            "host_figures": source == "system_stats",
            "util_gpu": last.get("util_gpu"),
            "mem_used_mb": last.get("mem_used_mb"),
            "mem_total_mb": last.get("mem_total_mb"),
            "points": [
                {
                    "t": s["ts"] - t0,
                    "util_gpu": s.get("util_gpu"),
                    "mem_used_mb": s.get("mem_used_mb"),
                    "mem_total_mb": s.get("mem_total_mb"),
                }
                for s in rows[::step]
                if s.get("ts")
            ],
        }
    return out


def ramp_view(shape, steps: list[dict], now: float) -> dict | None:
    """StepRamp: the level now, each finished step's verdict, and when the next step is judged.
    The ramp bisects after its first breach, so its end is an upper bound: the steps left to
    --ramp-max at --ramp-hold each."""
    level = getattr(shape, "level", None)
    if shape is None or level is None or getattr(shape, "level_started", None) is None:
        return None if not steps else {"level": None, "steps": steps}
    opts = shape.runner.environment.parsed_options
    next_in = max(0.0, shape.level_started + opts.ramp_hold - now)
    climbing = all(s.get("passed") for s in steps)
    left = max(0, (opts.ramp_max - level) // max(opts.ramp_step, 1)) if climbing else 1
    return {
        "level": level,
        "hold_s": opts.ramp_hold,
        "max": opts.ramp_max,
        "next_verdict_in_s": next_in,
        "eta_s": next_in + left * opts.ramp_hold,
        "eta_is_bound": climbing,
        "steps": steps,
    }


def snapshot(
    records: list[dict],
    events: list[dict],
    gpu: list[dict],
    queue: list[dict],
    targets,
    now: float,
    run: dict,
    ramp: dict | None = None,
    last: dict | None = None,
) -> dict:
    """Everything the live page draws. `run`: {name, started, users, in_flight, state}."""
    t0 = run.get("started") or now
    units_ = units(records)
    completions = sum(1 for u in units_ if u.get("done_ts") is not None)
    width = bucket_seconds(now - t0, completions)
    windows = {}
    for seconds in SLIDING_WINDOWS_S:
        start = max(t0, now - seconds)
        windows[f"last {seconds / 60:g} min"] = completed_between(units_, start, now)
    windows["run so far"] = completed_between(units_, t0, now)
    return {
        "now": now,
        "run": run,
        "bucket_s": width,
        "targets": {
            "images_per_min": targets.throughput_images_per_min,
            "p95_s": targets.latency_p95_s,
            "error_pct": targets.error_budget_pct,
        },
        "windows": windows,
        "series": series(units_, t0, now, width) if run.get("started") else [],
        "shaded": [
            {**w, "start": w["start"] - t0, "end": w["end"] - t0} for w in shaded_windows(events, now) if w["end"] >= t0
        ],
        "queue": [{**q, "t": q["ts"] - t0} for q in queue if q["ts"] >= t0],
        "gpu": gpu_view([s for s in gpu if (s.get("ts") or 0) >= t0 - 5], t0),
        "ramp": ramp,
        "last": last,
        "percentiles_note": "ComfyLoad's p50/p95 here are exact: linear interpolation over every completed "
        "render's own record in the named window. Locust's Statistics and Charts tabs show "
        "Locust's figures: nearest-rank percentiles of its response-time histogram "
        "(Charts: its last ~10 s), so they can differ by a few ms.",
    }


class LiveState:
    """Per test on the master (or a local run): queue samples and the run's events."""

    def __init__(self, harness):
        self.harness = harness
        self.started = time.time()
        self.queue = collections.deque(maxlen=QUEUE_SAMPLES)
        self.events: list[dict] = []
        self._offset = 0
        self._path = (
            Path(harness.recorder.run_dir) / "comfyui_metrics.ndjson" if hasattr(harness.recorder, "run_dir") else None
        )

    def follow_events(self) -> None:
        """New event lines from the run's NDJSON (records are written `kind` first)."""
        if self._path is None or not self._path.exists():
            return
        with open(self._path, "rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1
        self._offset += end
        for line in chunk[:end].splitlines():
            if line.startswith(b'{"kind":"event"'):
                try:
                    self.events.append(json.loads(line))
                except ValueError:
                    continue

    def sample_queue(self, ask_server) -> None:
        """ComfyUI's queue (what its `status` broadcasts say; else GET /prompt) and our prompts in flight."""
        fleet = self.harness.shared_fleet
        depths = [c.queue_remaining for c in fleet.clients if c.queue_remaining is not None] if fleet else []
        depth = sum(depths) if depths else ask_server()
        self.queue.append({"ts": time.time(), "queue_remaining": depth, "in_flight": self.in_flight()})

    def in_flight(self) -> int:
        return self.harness.in_flight()
