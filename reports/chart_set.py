"""Which charts a report draws, from what: the one place the report's charts are chosen.

Every chart covers the load window (first intended send to the end of the run, so a dead
server's idle time shows as zero buckets), uses a bucket wide enough for about 10 completions
(comfyload.analysis.buckets), and shades outages and faults. A metric the run did not measure gets one
"not measured" line, never an empty panel."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from comfyload.analysis.buckets import shaded_windows
from comfyload.analysis.metrics import units_of
from reports import charts as ch
from reports import timeseries as ts
from reports.figures import gpu_frame
from reports.safe_write import real_dir


def load_end(run, window: dict) -> float:
    """The end of the load window: the run's stop, not its last completion."""
    stops = [
        r["ts"]
        for r in run.records
        if r.get("kind") == "event" and r.get("name") in ("test.stop", "run.stop") and r.get("ts")
    ]
    return max([window["end_ts"], *stops])


def time_series(run, summary: dict):
    """(per-unit frame, per-bucket series, t0, t_end, width): what every over-time chart draws, from
    the judged window to the end of load, empty buckets included."""
    frame = ts.unit_frame(units_of(run.kinds))
    window = summary["window"]
    t0, t_end = window["start_ts"], load_end(run, window)
    width = ts.bucket_seconds(t_end - t0, int(frame["done"].notna().sum()))
    return frame, ts.request_series(frame, t0, width, t_end), t0, t_end, width


def draw_charts(run, summary: dict, targets, out: Path) -> list:
    real_dir(out)  # reports/safe_write.py: a charts/ link is replaced, never followed
    for old in out.glob("*.png"):
        old.unlink()
    if summary["window"] is None:
        return []
    frame, series, t0, t_end, width = time_series(run, summary)
    events = [r for r in run.records if r.get("kind") == "event"]
    windows = shaded_windows(events, t_end)
    markers = [e for e in summary["faults"] if e.get("name") not in ("fault.start", "fault.end")]
    gpu = gpu_frame(run.of_kind("gpu"))
    ok_seconds = frame.loc[frame["ok"], "e2e_ms"].dropna().to_numpy() / 1000.0
    unit = "books" if (summary.get("ramp_knee") or {}).get("unit") == "books" else "users"
    workers = Counter(r.get("worker") for r in run.records if r.get("kind") == "prompt" and r.get("worker"))
    drawn = [
        ch.latency_over_time(series, targets.latency_p95_s, windows, t0, out, markers),
        ch.throughput_over_time(
            series,
            ts.users_series(run.history, t0),
            windows,
            t0,
            out,
            targets.throughput_images_per_min,
            unit,
            markers,
            dict(sorted(workers.items())),
        ),
        ch.errors_over_time(series, targets.error_budget_pct, windows, t0, out, markers),
        *ch.gpu_over_time(None if gpu is None else ts.gpu_series(gpu, t0, width), windows, t0, out),
        ch.latency_cdf(ts.cdf_points(ok_seconds), targets.latency_p95_s, out),
        ch.queue_vs_execution(series, out),
        ch.node_bars(summary["bottleneck_nodes"], out),
        ch.ramp_chart(
            summary["ramp_steps"],
            summary.get("ramp_knee"),
            targets.latency_p95_s,
            unit,
            out,
            targets.throughput_images_per_min,
        ),
    ]
    return [c for c in drawn if c is not None]
