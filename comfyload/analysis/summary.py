"""The console summary of a run: text over `calculate_metrics(...).as_dict()` (summary.json's
core, a fleet's per-server figures included). Nothing here computes a figure; it only says which
population each one covers."""

from __future__ import annotations

import time

from comfyload.analysis.fleet_figures import format_balance, server_balance
from comfyload.analysis.metrics import calculate_metrics
from comfyload.analysis.ramp import knee_text
from comfyload.analysis.sla import MetricVerdict, SlaTargets
from comfyload.analysis.split_gaps import SPLIT_NAMES, gap_note
from comfyload.common.records import by_kind


def summarise(records, targets: SlaTargets, drill: dict | None = None) -> dict:
    """summary.json's core for a run's records (the metrics model, as a dict)."""
    return summary_of(calculate_metrics(records, targets, drill), records)


def summary_of(metrics, records) -> dict:
    summary = metrics.as_dict()
    prompts = by_kind(records).get("prompt", [])
    summary["server_balance"] = server_balance(prompts) if metrics.servers else None
    return summary


def seconds(stats: dict, key: str) -> str:
    value = stats.get(key)
    return "-" if value is None else f"{value / 1000.0:.3f} s"


def format_summary(summary: dict) -> str:
    """Fits 100 columns; every figure names its population."""
    e2e, queue, execution = summary["e2e_ms"], summary["queue_wait_ms"], summary["execution_ms"]
    pop, units = summary["population"], summary["units"]
    ipm = summary["images_per_minute"]
    window = "-" if pop["duration_s"] is None else f"{pop['duration_s']:.1f} s"
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(summary["outcomes"].items()))
    lines = [
        f"prompts: {summary['prompts_submitted']} submitted, {summary['prompts_ok']} ok, "
        f"{summary['prompts_failed']} failed, {summary['prompts_cut_off']} cut off ({outcomes})",
        f"judged: {pop['judged']} {pop['unit']} — {pop['label']}",
        f"  window {window}; "
        f"{units['ok']} ok, {units['failed']} failed"
        + (f" ({units['dropped']} dropped arrivals)" if units["dropped"] else "")
        + (
            f"; {pop['cut_off_on_track_excluded']} cut off on track, not judged"
            if pop["cut_off_on_track_excluded"]
            else ""
        ),
        f"images per minute (judged window): {'-' if ipm is None else f'{ipm:.1f}'}",
        f"end-to-end (judged successes): p50 {seconds(e2e, 'p50')}  p95 {seconds(e2e, 'p95')}  "
        f"max {seconds(e2e, 'max')}",
        f"queue wait: p50 {seconds(queue, 'p50')}  mean {seconds(queue, 'mean')}  |  "
        f"execution: p50 {seconds(execution, 'p50')}  mean {seconds(execution, 'mean')}",
    ]
    gaps = summary.get("split_gaps") or {}
    lines += [f"  {name}: {gap_note(gaps[key])}" for name, key in SPLIT_NAMES if key in gaps]
    books = summary.get("books")
    if books:
        lines.append(
            f"books: {books['ok']}/{books['total']} ok, {books['failed']} failed, {books['cut_off']} cut off; "
            f"p95 {seconds(books['e2e_ms'], 'p95')}"
        )
        lines.append(
            f"pages: {books['pages']} ({books['pages_ok']} ok, {books['pages_cut_off']} cut off), "
            f"{books['pages_retried']} retried ({books['retries']} retries), "
            f"{books['pages_needs_regeneration']} need regeneration"
        )
    arrivals = summary.get("arrivals")
    if arrivals:
        late = arrivals["lateness_ms"]
        lines.append(
            f"arrivals: {arrivals['scheduled']} scheduled, {arrivals['on_time']} on time, "
            f"{arrivals['late']} late (p95 {seconds(late, 'p95')} late), {arrivals['dropped']} dropped, "
            f"{arrivals['backlog_left']} unserved at the end"
        )
    for outage in summary.get("outages") or []:
        start = time.strftime("%H:%M:%S", time.localtime(outage["start_ts"]))
        lines.append(
            f"outage: {outage['server']} down at {start}, "
            + (f"back after {outage['duration_s']:.1f} s" if outage["duration_s"] is not None else "never back")
            + (
                f", recovered (first success) after {outage['recovery_s']:.1f} s"
                if outage["recovered"]
                else ", not recovered"
            )
        )
    fleet = summary.get("servers")
    if fleet:
        for server, v in fleet["by_server"].items():
            rate = v["images_per_minute"]
            lines.append(
                f"  {server}: {v['ok']} ok, {v['failed']} failed, "
                f"{'-' if rate is None else f'{rate:.1f}'} images/min, p95 {seconds(v, 'p95_ms')}"
            )
        if fleet["imbalance"] is not None:
            lines.append(f"fleet imbalance: {fleet['imbalance']:.2f} (busiest server / even share)")
    if summary.get("server_balance"):
        lines += format_balance(summary["server_balance"])
    knee = summary.get("ramp_knee")
    if knee:
        rate = knee.get("images_per_min")
        lines.append(
            "ramp "
            + knee_text(knee)
            + (
                f" ({rate:.1f} images/min, p95 {knee['p95_s']:.2f} s)"
                if rate is not None and knee.get("p95_s") is not None
                else ""
            )
        )
    drill = summary.get("fault_verdict")
    lines.append("SLA" + (" (information: a drill is judged on its expected behaviour):" if drill else ":"))
    lines += ["  " + MetricVerdict(**v).line() for v in summary["sla"]]
    a = summary["audit"]
    books_audit = "".join(
        f", {k} {v['started']}/{v['recorded']}"
        for k, v in ((k, a.get(k)) for k in ("pages", "books"))
        if v and (v["started"] or v["recorded"])
    )
    lines.append(
        f"audit (submitted or started / recorded): prompts {a['submitted']}/{a['recorded']}{books_audit}: "
        + {True: "ok", None: a["problem"], False: f"FAIL - {a['problem']}"}[a["ok"]]
    )
    lines.append(summary["verdict"]["text"])
    return "\n".join(lines)
