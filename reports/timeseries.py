"""Per-request records bucketed over time for the charts. Percentiles per bucket go through
comfyload.analysis.metrics.percentile, so a chart and the verdict can never disagree on the definition."""

from __future__ import annotations

import numpy as np
import pandas as pd

from comfyload.analysis import buckets
from comfyload.analysis.metrics import percentile

MAX_BUCKETS = buckets.MAX_BUCKETS


def unit_frame(units: list[dict]) -> pd.DataFrame:
    """One row per render: times in epoch seconds, durations in ms, `ok` for a success."""

    def column(key):  # None -> NaN
        return np.array([u.get(key) for u in units], dtype=float)

    return pd.DataFrame(
        {
            "send": column("intended_send_ts"),
            "done": column("done_ts"),
            "e2e_ms": column("e2e_ms"),
            "queue_ms": column("queue_wait_ms"),
            "exec_ms": column("execution_ms"),
            "download_ms": column("download_ms"),
            "ok": np.array([u.get("outcome") == "success" for u in units], dtype=bool),
        }
    )


def bucket_seconds(duration_s: float, completions: int | None = None) -> int:
    """The chart bucket: see comfyload.analysis.buckets (the web UI's live charts use the same rule)."""
    return buckets.bucket_seconds(duration_s, completions)


def request_series(frame: pd.DataFrame, t0: float, width: int, t_end: float | None = None) -> pd.DataFrame:
    """Per bucket of completion time (seconds since t0): e2e p50/p95/p99 of successes,
    images/min, error %, mean queue / execution / download. With `t_end` (the end of the load
    window), every bucket up to it is there: one in which nothing completed is 0 images/min
    (and has no latency), never left out for the line to join across."""
    done = frame[frame["done"].notna()]
    bucket = ((done["done"] - t0) // width * width).rename("t")
    grouped = done.groupby(bucket)
    ok = done[done["ok"]]
    ok_grouped = ok.groupby(bucket[done["ok"]])
    series = pd.DataFrame(
        {
            "renders": grouped.size(),
            "ok": ok_grouped.size(),
            "p50_s": ok_grouped["e2e_ms"].agg(lambda s: percentile(s.to_numpy(), 50)) / 1000.0,
            "p95_s": ok_grouped["e2e_ms"].agg(lambda s: percentile(s.to_numpy(), 95)) / 1000.0,
            "p99_s": ok_grouped["e2e_ms"].agg(lambda s: percentile(s.to_numpy(), 99)) / 1000.0,
            "queue_s": ok_grouped["queue_ms"].mean() / 1000.0,
            "exec_s": ok_grouped["exec_ms"].mean() / 1000.0,
            "download_s": ok_grouped["download_ms"].mean() / 1000.0,
        }
    )
    if t_end is not None:
        series = series.reindex(sorted(set(buckets.bucket_starts(t0, t_end, width)) | set(series.index)))
        series.index.name = "t"
    series["renders"] = series["renders"].fillna(0)
    series["ok"] = series["ok"].fillna(0)
    covered = pd.Series(float(width), index=series.index)
    if t_end is not None:  # the last bucket ends with the load window, part-way through
        covered = (t_end - t0 - covered.index.to_series()).clip(lower=1e-9, upper=width)
    series["images_per_min"] = series["ok"] * 60.0 / covered
    series["error_pct"] = (100.0 * (series["renders"] - series["ok"]) / series["renders"]).where(series["renders"] > 0)
    return series.sort_index()


def users_series(history: pd.DataFrame, t0: float) -> pd.Series | None:
    """Locust's user count over time (seconds since t0), from the Aggregated history rows."""
    if history.empty:
        return None
    return pd.Series(history["User Count"].to_numpy(), index=history["Timestamp"].to_numpy() - t0)


def gpu_series(gpu: pd.DataFrame, t0: float, width: int) -> pd.DataFrame:
    """Per GPU and bucket: mean utilisation, peak VRAM, mean power."""
    frame = gpu.assign(
        t=(gpu["ts"] - t0) // width * width,
        source=gpu["source"].fillna("?") if "source" in gpu else "?",
        device_type=gpu["device_type"].fillna("gpu") if "device_type" in gpu else "gpu",
    )
    return (
        frame.groupby(["gpu", "source", "device_type", "t"])
        .agg(
            util_gpu=("util_gpu", "mean"),
            mem_used_mb=("mem_used_mb", "max"),
            mem_total_mb=("mem_total_mb", "max"),
            power_w=("power_w", "mean"),
            power_limit_w=("power_limit_w", "max"),
        )
        .reset_index()
    )


def cdf_points(values: np.ndarray, points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """The empirical CDF, thinned to `points` evenly spaced ranks (a million requests draw the
    same curve as two thousand)."""
    ordered = np.sort(values)
    if len(ordered) == 0:
        return ordered, ordered
    if len(ordered) > points:
        ordered = ordered[np.linspace(0, len(ordered) - 1, points).astype(int)]
        fraction = np.linspace(0, 1, len(ordered))
    else:
        fraction = np.arange(1, len(ordered) + 1) / len(ordered)
    return ordered, fraction
