"""Capacity predicted from a short measured run (the model behind `comfyload plan` and the
adaptive ramp; the command itself is orchestration/plan_command.py).

From the run's prompt records it takes each workflow's service time (the server's execution time
plus the gap the server leaves between two queued prompts: both occupy it), the harness's own
overhead per page, the failure rate and the retry policy; from the book profile, the page
structure. comfyload.analysis.queueing then predicts, for c = 1..C servers and N = 1..K books, images/min
and p95 page latency, the knee (most books within the SLA's p95 and error budget), and the servers
a target needs. Deterministic for a seed."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from comfyload.analysis.queueing import (
    Point,
    Profile,
    Workload,
    knee,
    predict_closed,
    servers_for_books,
    servers_for_rate,
)
from comfyload.common.errors import UserError

DEFAULT_MAX_BOOKS = 20
DEFAULT_MAX_SERVERS = 4


@dataclass
class Measured:
    workload: Workload
    service: dict  # workflow -> {"count", "p50_s", "mean_s"}
    server_gap_s: float
    client_s: float
    prompts: int
    profile_spec: str
    measured_knee: dict | None  # a ramp's knee event, when the run was a ramp


def server_gap_s(prompts: list[dict]) -> float:
    """Median of server_gaps (0 when no prompt was ever queued behind another)."""
    gaps = server_gaps(prompts)
    return float(np.median(gaps)) if gaps else 0.0


def server_gaps(prompts: list[dict]) -> list[float]:
    """Idle times of a server between one execution's end and the next's start, counted only where
    the next prompt was already queued (so the server, not the load, made the gap): ComfyUI's
    history write, and its gc.collect() every 10 s (~0.3 s here), which delays every queued page."""
    gaps = []
    by_server: dict = {}
    for r in prompts:
        if r.get("execution_start") is not None and r.get("execution_end") is not None:
            by_server.setdefault(r.get("server"), []).append(r)
    for runs in by_server.values():
        runs.sort(key=lambda r: r["execution_start"])
        for prev, nxt in zip(runs, runs[1:]):
            if nxt.get("create_time") is not None and nxt["create_time"] < prev["execution_end"]:
                gaps.append(max(0, nxt["execution_start"] - prev["execution_end"]) / 1000.0)
    return gaps


def measure(records: list[dict], mix=None, policy=None, service_since: float | None = None) -> Measured:
    """The model's inputs, from a run's records. `mix`: the book profiles to plan (a
    workloads.book.BookMix the caller loaded; None plans each prompt as a one-page book); `policy`:
    the retry policy (a workloads.retry.RetryPolicy; None: 3 retries after 15, 45, 90 s).
    `service_since`: take service times and overheads only from prompts sent since then (the
    server's pauses still from all records: they come every ~10 s, a short window sees too few)."""
    prompts = [r for r in records if r.get("kind") == "prompt" and r.get("error_type") != "harness_stopped"]
    timed = [r for r in prompts if r.get("outcome") == "success" and r.get("execution_ms") is not None]
    if not timed:
        raise UserError("the run has no successful prompt with a server execution time to plan from")
    gaps = server_gaps(prompts) or [0.0]
    gap = float(np.median(gaps))
    pause_every_s, pauses, gaps = server_pauses(gaps, timed)
    if service_since is not None:
        recent = [r for r in timed if r["intended_send_ts"] >= service_since]
        timed = recent or timed
    samples: dict = {}
    for i, r in enumerate(timed):  # each execution with one measured gap: the gc pauses keep their share
        samples.setdefault(r["workflow"], []).append(r["execution_ms"] / 1000.0 + gaps[i % len(gaps)])
    overheads = [
        (r["e2e_ms"] - (r.get("queue_wait_ms") or 0) - r["execution_ms"]) / 1000.0 - gap
        for r in timed
        if r.get("e2e_ms") is not None
    ]
    client_s = max(0.0, float(np.median(overheads))) if overheads else 0.0
    # an attempt the load's end cut off is no failure (the outcome policy judges none): counted, the
    # 3 prompts in flight when a ramp stops made 4.5 % "failed" and retries of 15-90 s, knee 1 for 4
    attempted = [r for r in prompts if r.get("outcome") != "cut_off"] or prompts
    fail_p = sum(r.get("outcome") != "success" for r in attempted) / len(attempted)
    if mix is not None:
        spec = ",".join(p.name for p in mix.profiles)
        profiles = []
        for p, weight in zip(mix.profiles, mix.weights):
            pages = []
            for page in range(1, p.pages + 1):
                name = p.workflow_for(page).name
                if name not in samples:
                    raise UserError(
                        f"book profile {p.name}: workflow {name} was not measured in this run "
                        f"(measured: {', '.join(sorted(samples))})"
                    )
                pages.append(tuple(samples[name]))
            profiles.append(Profile(p.name, tuple(pages), weight))
    else:  # a prompt run: each prompt is a one-page "book", workflows mixed as measured
        spec = "prompts"
        profiles = [Profile(name, (tuple(s),), len(s)) for name, s in sorted(samples.items())]
    workload = Workload(
        tuple(profiles),
        client_s=client_s,
        fail_p=fail_p,
        pause_every_s=pause_every_s,
        pause_s=float(np.median(pauses)) if pauses else 0.0,
        pause_samples=tuple(pauses),
        max_retries=policy.max_retries if policy is not None else 3,
        backoff_s=tuple(policy.backoff_s) if policy is not None else (15.0, 45.0, 90.0),
    )
    service = {
        name: {"count": len(s), "p50_s": float(np.median(s)), "mean_s": float(np.mean(s))}
        for name, s in sorted(samples.items())
    }
    knees = [r for r in records if r.get("kind") == "event" and r.get("name") == "ramp.knee"]
    return Measured(workload, service, gap, client_s, len(prompts), spec, knees[-1] if knees else None)


def server_pauses(gaps: list[float], timed: list[dict]) -> tuple[float, list[float], list[float]]:
    """(every_s, the pauses, the other gaps): gaps far above the typical one are the server's periodic
    pauses (ComfyUI's gc.collect() at most every 10 s; 0.3 s on a quiet machine, up to 2 s on a busy
    one, so their lengths are kept); two or more make a period, over the span the executions
    covered. Fewer stay ordinary gaps."""
    typical = float(np.median(gaps))
    pauses = [g for g in gaps if g > max(0.05, 5 * typical)]
    if len(pauses) < 2:
        return 0.0, [], gaps
    span = (max(r["execution_end"] for r in timed) - min(r["execution_start"] for r in timed)) / 1000.0
    rest = [g for g in gaps if g <= max(0.05, 5 * typical)] or [0.0]
    return span / len(pauses), pauses, rest


@dataclass
class Plan:
    points: list[Point]
    knees: dict  # servers -> books
    p95_target_s: float
    error_budget_pct: float
    target_books: int | None
    servers_for_books: int | None
    target_per_hour: float | None
    servers_for_rate: int | None
    rate_point: Point | None


def make_plan(
    measured: Measured,
    p95_target_s: float,
    error_budget_pct: float,
    max_books: int,
    max_servers: int,
    target_books: int | None = None,
    target_per_hour: float | None = None,
    seed: int = 1,
    pages: int = 3000,
) -> Plan:
    points = predict_closed(measured.workload, max_books, max_servers, seed, pages)
    knees = {c: knee(points, c, p95_target_s, error_budget_pct) for c in range(1, max_servers + 1)}
    need_books = servers_for_books(points, target_books, p95_target_s, error_budget_pct) if target_books else None
    need_rate, rate_point = (
        servers_for_rate(measured.workload, target_per_hour, p95_target_s, max_servers, seed, pages, error_budget_pct)
        if target_per_hour
        else (None, None)
    )
    return Plan(
        points, knees, p95_target_s, error_budget_pct, target_books, need_books, target_per_hour, need_rate, rate_point
    )


def format_plan(measured: Measured, plan: Plan) -> str:
    w = measured.workload
    pause = (
        f"; server pause {w.pause_s:.2f} s (p50; max {max(w.pause_samples):.2f}) every {w.pause_every_s:.1f} s"
        if w.pause_every_s
        else ""
    )
    lines = [
        f"measured: {measured.prompts} prompts; "
        f"server gap between queued prompts {measured.server_gap_s:.3f} s{pause}; "
        f"harness overhead per page {measured.client_s:.3f} s; failed attempts {100 * w.fail_p:.1f} % "
        f"(retries {w.max_retries}, backoff {','.join(f'{b:g}' for b in w.backoff_s)} s)"
    ]
    for name, s in measured.service.items():
        lines.append(f"  service time {name}: p50 {s['p50_s']:.3f} s, mean {s['mean_s']:.3f} s ({s['count']} prompts)")
    lines.append(
        f"book: {measured.profile_spec} ({w.mean_pages:g} pages, {w.mean_book_service_s:.2f} s of server time a book)"
    )
    lines.append(f"SLA: page p95 <= {plan.p95_target_s:g} s, errors <= {plan.error_budget_pct:g} %")
    servers = sorted(plan.knees)
    lines.append("predicted, closed loop (books in flight): images/min | p95 page latency")
    lines.append("books  " + "  ".join(f"{f'{c} server' + ('s' if c > 1 else ''):>20}" for c in servers))
    by = {(p.servers, int(p.load)): p for p in plan.points}
    for n in sorted({int(p.load) for p in plan.points}):
        cells = []
        for c in servers:
            p = by[(c, n)]
            mark = "*" if plan.knees[c] == n else " "
            cells.append(f"{p.images_per_min:8.1f} | {p.p95_s:7.2f} s{mark}")
        lines.append(f"{n:>5}  " + "  ".join(f"{cell:>20}" for cell in cells))
    top = max(n for _, n in by)
    lines.append(
        "predicted knee (* above): "
        + ", ".join(
            f"{c} server{'s' if c > 1 else ''}: {'>= ' if plan.knees[c] == top else ''}{plan.knees[c]} books"
            for c in servers
        )
    )
    if plan.target_books:
        lines.append(
            f"servers for {plan.target_books} simultaneous books: "
            + (str(plan.servers_for_books) if plan.servers_for_books else f"more than {servers[-1]}")
        )
    if plan.target_per_hour:
        p = plan.rate_point
        lines.append(
            f"servers for {plan.target_per_hour:g} books arriving per hour (open loop): "
            + (
                f"{plan.servers_for_rate} (p95 {p.p95_s:.2f} s, {p.images_per_min:.1f} images/min)"
                if plan.servers_for_rate
                else f"more than {servers[-1]}"
            )
        )
    if measured.measured_knee:
        k = measured.measured_knee
        lines.append(
            f"measured knee in this run: {k.get('users')} {k.get('unit', 'books')}"
            + (f" (first breach at {k['first_breach']})" if k.get("first_breach") else "")
        )
    return "\n".join(lines)


def plan_document(measured: Measured, plan: Plan) -> dict:
    return {
        "service": measured.service,
        "server_gap_s": measured.server_gap_s,
        "client_s": measured.client_s,
        "pause_s": measured.workload.pause_s,
        "pause_every_s": measured.workload.pause_every_s,
        "fail_p": measured.workload.fail_p,
        "profile": measured.profile_spec,
        "p95_target_s": plan.p95_target_s,
        "error_budget_pct": plan.error_budget_pct,
        "knees": {str(c): n for c, n in plan.knees.items()},
        "target_books": plan.target_books,
        "servers_for_books": plan.servers_for_books,
        "target_per_hour": plan.target_per_hour,
        "servers_for_rate": plan.servers_for_rate,
        "rate_point": plan.rate_point.as_dict() if plan.rate_point else None,
        "points": [_finite(p.as_dict()) for p in plan.points],
        "measured_knee": measured.measured_knee,
    }


def _finite(d: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}
