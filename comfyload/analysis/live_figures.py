"""Every figure the web UI shows, read in ONE place, from the metrics model
(comfyload.analysis.metrics) over the harness's recent records."""

from __future__ import annotations

from dataclasses import replace

from comfyload.analysis.metrics import calculate_metrics, percentiles, units_of
from comfyload.analysis.sla import MetricVerdict, SlaTargets
from comfyload.common.records import by_kind

SLIDING_WINDOWS_S = (60.0, 300.0)


def run_verdicts(records: list[dict], targets: SlaTargets) -> list[MetricVerdict]:
    """The run so far, judged as the exit code will judge it (warm-up out)."""
    return calculate_metrics(records, targets).sla


def window_verdicts(records: list[dict], targets: SlaTargets) -> list[MetricVerdict]:
    """A window of the run, judged without a warm-up (the window is past it)."""
    return calculate_metrics(records, replace(targets, warmup_seconds=0, warmup_prompts=0)).sla


def units(records: list[dict]) -> list[dict]:
    """What the SLA counts: pages after retries when the run has books, else prompts (and
    dropped arrivals)."""
    return units_of(by_kind(records))


def completed_between(units_: list[dict], start: float, end: float) -> dict:
    """The renders that completed in [start, end): images/min over the window's length (so an
    idle or dead server drives it to zero), exact p50/p95 of the successes, failed %."""
    done = [u for u in units_ if u.get("done_ts") is not None and start <= u["done_ts"] < end]
    ok = [u for u in done if u.get("outcome") == "success"]
    minutes = max(end - start, 1e-9) / 60.0
    p50, p95 = percentiles([u["e2e_ms"] / 1000.0 for u in ok if u.get("e2e_ms") is not None], [50, 95]) or (None, None)
    return {
        "completed": len(done),
        "ok": len(ok),
        "images_per_min": len(ok) / minutes,
        "p50_s": p50,
        "p95_s": p95,
        "error_pct": 100.0 * (len(done) - len(ok)) / len(done) if done else None,
        "seconds": end - start,
    }


def exported_figures(records: list[dict], targets: SlaTargets, started: float, now: float) -> dict:
    """What the Prometheus endpoint serves: each sliding window as the web UI's live tab shows it
    (in SLIDING_WINDOWS_S order), and the run so far as the report will judge it (RunMetrics:
    its figures are summary.json's, its `sla` the exit code's verdicts)."""
    units_ = units(records)
    windows = [completed_between(units_, max(started, now - seconds), now) for seconds in SLIDING_WINDOWS_S]
    return {"windows": windows, "run": calculate_metrics(records, targets)}
