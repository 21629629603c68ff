"""The run summary printed at the end of a headless run and written to summary.json:
every figure is computed from the per-request records in comfyui_metrics.ndjson."""
from __future__ import annotations

from collections import Counter

from comfyload.audit import audit_kinds
from comfyload.sla import (MetricVerdict, SlaTargets, breaches, by_kind, evaluate_kinds, knee_of, percentile, percentiles,
                           steady_state, units_of, verdict_kinds, window_minutes)


def _stats(values) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"count": 0}
    p50, p90, p95, p99 = percentiles(values, [50, 90, 95, 99])
    return {"count": len(values), "mean": sum(values) / len(values), "p50": p50, "p90": p90, "p95": p95, "p99": p99,
            "max": max(values)}


def summarise(records: list[dict], targets: SlaTargets) -> dict:
    kinds = by_kind(records)
    prompts = kinds.get("prompt", [])
    prompts_ok = [r for r in prompts if r.get("outcome") == "success"]  # server-side split is per prompt
    units = units_of(kinds)
    ok = [r for r in units if r.get("outcome") == "success"]
    steady_all = steady_state(units, targets)
    steady = [r for r in steady_all if r.get("done_ts") is not None]
    steady_ok = [r for r in steady if r.get("outcome") == "success"]
    judged = verdict_kinds(kinds)
    verdicts = evaluate_kinds(judged, targets, steady_all if judged is kinds else None)
    run_audit = audit_kinds(kinds)
    books, pages, events = kinds.get("book", []), kinds.get("page", []), kinds.get("event", [])
    arrivals = [r for r in events if r.get("name") == "arrivals.summary"]
    return {
        "prompts_submitted": len(prompts),
        "prompts_ok": len(prompts_ok),
        "prompts_failed": sum(r.get("outcome") != "success" and r.get("error_type") != "harness_stopped" for r in prompts),
        "prompts_stopped_by_harness": sum(r.get("error_type") == "harness_stopped" for r in prompts),
        "outcomes": dict(Counter(r.get("outcome") for r in prompts)),
        "success_rate_pct": 100.0 * len(ok) / len(units) if units else None,
        "images_per_minute": len(steady_ok) / window_minutes(steady) if steady else None,
        "e2e_ms": _stats([r.get("e2e_ms") for r in ok]),
        "queue_wait_ms": _stats([r.get("queue_wait_ms") for r in prompts_ok]),
        "execution_ms": _stats([r.get("execution_ms") for r in prompts_ok]),
        "download_ms": _stats([r.get("download_ms") for r in prompts_ok]),
        "books": {"total": len(books), "ok": sum(b["outcome"] == "success" for b in books),
                  "e2e_ms": _stats([b["e2e_ms"] for b in books if b["outcome"] == "success"]),
                  "pages": len(pages), "pages_retried": sum(p["retry_count"] > 0 for p in pages),
                  "retries": sum(p["retry_count"] for p in pages),
                  "pages_needs_regeneration": sum(bool(p["needs_regeneration"]) for p in pages)} if books or pages else None,
        "arrivals": _sum_counts(arrivals),
        "servers": per_server(prompts) if len({r.get("server") for r in prompts}) > 1 else None,
        "ramp_knee": knee_of(events),
        "sla": [v.__dict__ for v in verdicts],
        "audit": run_audit,
        "sla_pass": not breaches(verdicts) and run_audit["ok"] is not False,
        "breached": [v.metric for v in breaches(verdicts)] + (["audit"] if run_audit["ok"] is False else []),
    }


def per_server(prompts: list[dict]) -> dict:
    """A fleet's figures per server, and the imbalance: the busiest server's share of the
    completed prompts over an even share (1.0 = perfectly even)."""
    servers = {}
    for server in sorted({r.get("server") for r in prompts}):
        mine = [r for r in prompts if r.get("server") == server]
        ok = [r for r in mine if r.get("outcome") == "success"]
        done = [r for r in mine if r.get("done_ts") is not None]
        servers[server] = {"prompts": len(mine), "ok": len(ok), "failed": len(mine) - len(ok),
                           "images_per_minute": len(ok) / window_minutes(done) if done else None,
                           "p95_ms": percentile([r["e2e_ms"] for r in ok], 95),
                           "queue_wait_p50_ms": percentile([r["queue_wait_ms"] for r in ok if r.get("queue_wait_ms") is not None], 50)}
    total_ok = sum(v["ok"] for v in servers.values())
    imbalance = max(v["ok"] for v in servers.values()) / (total_ok / len(servers)) if total_ok else None
    return {"by_server": servers, "imbalance": imbalance}


def _sum_counts(arrival_events) -> dict | None:
    if not arrival_events:
        return None
    keys = ("scheduled", "on_time", "late", "dropped")
    return {k: sum(e.get(k, 0) for e in arrival_events) for k in keys}


def format_summary(summary: dict) -> str:
    def ms(stats, key):
        value = stats.get(key)
        return "-" if value is None else f"{value / 1000.0:.3f} s"

    e2e, queue, execution = summary["e2e_ms"], summary["queue_wait_ms"], summary["execution_ms"]
    ipm = summary["images_per_minute"]
    lines = [
        f"prompts: {summary['prompts_ok']} ok, {summary['prompts_failed']} failed "
        f"({', '.join(f'{k} {v}' for k, v in sorted(summary['outcomes'].items()))})"
        + (f", {summary['prompts_stopped_by_harness']} cut off at the end of the run" if summary["prompts_stopped_by_harness"] else ""),
        f"images per minute: {'-' if ipm is None else f'{ipm:.1f}'}",
        f"end-to-end: p50 {ms(e2e, 'p50')}  p95 {ms(e2e, 'p95')}  max {ms(e2e, 'max')}",
        f"queue wait: p50 {ms(queue, 'p50')}  mean {ms(queue, 'mean')}   |   execution: p50 {ms(execution, 'p50')}  mean {ms(execution, 'mean')}",
    ]
    books = summary.get("books")
    if books:
        lines.append(f"books: {books['ok']}/{books['total']} ok, p95 {ms(books['e2e_ms'], 'p95')}; pages: {books['pages']}, "
                     f"{books['pages_retried']} retried ({books['retries']} retries), "
                     f"{books['pages_needs_regeneration']} need regeneration")
    arrivals = summary.get("arrivals")
    if arrivals:
        lines.append(f"arrivals: {arrivals['scheduled']} scheduled, {arrivals['on_time']} on time, "
                     f"{arrivals['late']} late (cap reached), {arrivals['dropped']} dropped")
    fleet = summary.get("servers")
    if fleet:
        for server, v in fleet["by_server"].items():
            ipm = v["images_per_minute"]
            lines.append(f"  {server}: {v['ok']} ok, {v['failed']} failed, "
                         f"{'-' if ipm is None else f'{ipm:.1f}'} images/min, p95 {ms(v, 'p95_ms')}")
        if fleet["imbalance"] is not None:
            lines.append(f"fleet imbalance: {fleet['imbalance']:.2f} (busiest server / even share)")
    knee = summary.get("ramp_knee")
    if knee:
        ipm = knee.get("images_per_min")
        lines.append(f"ramp knee: {knee['users']} {knee.get('unit', 'users')} within SLA"
                     + (f" ({ipm:.1f} images/min, p95 {knee['p95_s']:.2f} s)" if ipm is not None and knee.get('p95_s') is not None else "")
                     + (f"; first breach at {knee['first_breach']}" if knee.get("first_breach") else ""))
    lines.append("SLA:")
    lines += ["  " + MetricVerdict(**v).line() for v in summary["sla"]]
    a = summary["audit"]
    lines.append(f"audit: {a['submitted']} submitted, {a['recorded']} recorded: " + {True: "ok", None: a["problem"], False: f"FAIL - {a['problem']}"}[a["ok"]])
    verdict = "PASS" if summary["sla_pass"] else "FAIL (" + ", ".join(summary["breached"]) + ")"
    lines.append(f"SLA verdict: {verdict}")
    return "\n".join(lines)
