"""Time buckets for charts (the report's and the web UI's), and the windows charts shade.

Charts tell the truth: a bucket in which nothing completed is a zero, not a gap the line joins
across; the bucket width follows the run's length, wide enough for about MIN_PER_BUCKET
completions each where the run has that many (1-s buckets on a short run make throughput jump in
steps of 60/min); outages and faults are windows, shaded."""

from __future__ import annotations

import math

STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
MAX_BUCKETS = 240
MIN_BUCKETS = 6  # fewer is no longer a line
MIN_PER_BUCKET = 10  # completions per bucket, where the run allows it

# event name pairs that open and close a shaded window, and what the legend calls them
WINDOW_EVENTS = {
    "outage.start": ("outage.end", "outage"),
    "alert.connection_lost": ("alert.connection_restored", "connection lost"),
    "fault.start": ("fault.end", "fault"),
}


def bucket_seconds(duration_s: float, completions: int | None = None) -> int:
    """The smallest round width that keeps at most MAX_BUCKETS buckets and, where the run has
    enough completions, about MIN_PER_BUCKET in each; never so wide that fewer than MIN_BUCKETS
    remain."""
    duration_s = max(float(duration_s), 1.0)
    floor = duration_s / MAX_BUCKETS
    want = max(floor, duration_s * MIN_PER_BUCKET / completions) if completions else floor
    cap = max(duration_s / MIN_BUCKETS, floor)
    step = next((s for s in STEPS if s >= min(want, cap)), None)
    if step is None:
        return int(math.ceil(floor / 3600.0) * 3600)
    if step > cap:  # rounding up would leave too few buckets: the round step below it
        step = max([s for s in STEPS if s <= cap and s >= floor] or [step])
    return step


def bucket_starts(t0: float, t_end: float, width: float) -> list[float]:
    """Every bucket start (seconds since t0) from 0 to the end of the load window, empty ones too."""
    count = max(1, int(math.ceil(max(t_end - t0, 0.0) / width)))
    return [i * width for i in range(count)]


def shaded_windows(events, end_ts: float) -> list[dict]:
    """[{start, end, kind, label}]: each opening event paired with the next closing one of the
    same server (outages, lost connections) or fault; an open window lasts to `end_ts`."""
    events = sorted((e for e in events if e.get("ts") is not None), key=lambda e: e["ts"])
    windows = []
    for i, start in enumerate(events):
        pair = WINDOW_EVENTS.get(start.get("name"))
        if pair is None:
            continue
        closing, kind = pair
        key = start.get("server") if kind != "fault" else start.get("fault")
        end = next(
            (
                e["ts"]
                for e in events[i + 1 :]
                if e.get("name") == closing and (e.get("server") if kind != "fault" else e.get("fault")) == key
            ),
            None,
        )
        label = kind + (f" {key}" if key else "")
        windows.append(
            {
                "start": start["ts"],
                "end": end if end is not None else end_ts,
                "open": end is None,
                "kind": kind,
                "label": label,
            }
        )
    return windows
