"""`python -m reports build runs/<id>`: report.html, charts/*.png, summary.json, README.md."""
from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

from comfyload.errors import UserError
from comfyload.metrics import units_of
from reports import charts as ch
from reports import timeseries as ts
from reports.baseline_doc import render_baseline
from reports.figures import gpu_frame, report_summary, targets_for
from reports.report_page import render_report
from reports.run_folder import load_run


def draw_charts(run, summary: dict, targets, out: Path) -> list:
    out.mkdir(exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    units = units_of(run.kinds)
    frame = ts.unit_frame(units)
    window = summary["window"]
    if window is None:
        return []
    t0, width = window["start_ts"], ts.bucket_seconds(window["duration_s"])
    series = ts.request_series(frame, t0, width)
    gpu = gpu_frame(run.of_kind("gpu"))
    faults = summary["faults"]
    ok_seconds = frame.loc[frame["ok"], "e2e_ms"].dropna().to_numpy() / 1000.0
    unit = "books" if (summary.get("ramp_knee") or {}).get("unit") == "books" else "users"
    drawn = [
        ch.latency_over_time(series, targets.latency_p95_s, faults, t0, out),
        ch.throughput_over_time(series, ts.users_series(run.history, t0), faults, t0, out),
        ch.errors_over_time(series, targets.error_budget_pct, faults, t0, out),
        ch.gpu_over_time(None if gpu is None else ts.gpu_series(gpu, t0, width), faults, t0, out),
        ch.latency_cdf(ts.cdf_points(ok_seconds), targets.latency_p95_s, out),
        ch.queue_vs_execution(series, out),
        ch.node_bars(summary["bottleneck_nodes"], out),
        ch.ramp_chart(summary["ramp_steps"], summary.get("ramp_knee"), targets.latency_p95_s, unit, out),
    ]
    return [c for c in drawn if c is not None]


def build(run_dir, sla_path=None, also_write=None) -> dict:
    """Builds everything in the run folder; returns the summary (summary.json's `summary`).
    `also_write`: another path for summary.json (`comfyload run --output`)."""
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a million records: the cyclic GC would rescan them after every few allocations
    try:
        return _build(run_dir, sla_path, also_write)
    finally:
        if gc_was_enabled:
            gc.enable()


def _build(run_dir, sla_path, also_write) -> dict:
    run = load_run(run_dir)
    targets = targets_for(run, sla_path)
    summary = report_summary(run, targets)
    charts = draw_charts(run, summary, targets, run.path / "charts")
    summary["charts"] = [f"charts/{c.path.name}" for c in charts]
    write_summary(run.path, summary, also_write)
    (run.path / "report.html").write_text(render_report(summary, run.meta, charts), encoding="utf-8")
    (run.path / "README.md").write_text(render_baseline(summary, run.meta), encoding="utf-8")
    return summary


def write_summary(run_dir, summary: dict, also_write=None) -> None:
    """summary.json's one writer (and `comfyload run --output`'s copy of it)."""
    text = json.dumps({"summary": summary, "run_dir": str(run_dir)}, indent=2, default=str)
    (Path(run_dir) / "summary.json").write_text(text)
    if also_write:
        Path(also_write).parent.mkdir(parents=True, exist_ok=True)
        Path(also_write).write_text(text)


def build_after_run(run_dir, sla_path=None, output=None) -> dict | None:
    """What `python -m comfyload run` calls last: the summary the console prints is the
    report's. A report problem is reported, never fatal to the run's own verdict (None)."""
    try:
        return build(run_dir, sla_path, output)
    except UserError as exc:
        print(f"report not built: {exc}", file=sys.stderr)
    except Exception as exc:  # the run's verdict stands even when the report cannot be drawn
        print(f"report not built: {type(exc).__name__}: {exc}", file=sys.stderr)
    return None
