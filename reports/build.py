"""`python -m reports build runs/<id>`: report.html, charts/*.png, summary.json, README.md."""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

from comfyload.common.errors import UserError
from reports.baseline_doc import render_baseline
from reports.chart_set import draw_charts
from reports.figures import report_summary, targets_for
from reports.report_page import render_report
from reports.run_folder import load_run
from reports.safe_write import write_text


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
    summary["charts"] = [f"charts/{c.path.name}" for c in charts if c.path is not None]  # None: not measured
    write_summary(run.path, summary, also_write)
    write_text(run.path / "report.html", render_report(summary, run.meta, charts))
    write_text(run.path / "README.md", render_baseline(summary, run.meta))
    return summary


def write_summary(run_dir, summary: dict, also_write=None) -> None:
    """summary.json's one writer (and `comfyload run --output`'s copy of it)."""
    text = json.dumps({"summary": summary, "run_dir": str(run_dir)}, indent=2, default=str)
    write_text(Path(run_dir) / "summary.json", text)
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
