"""The step ramp's judgement, without Locust: each step judged on its own window with
metrics.judge_units (latency p95 and error rate: throughput and concurrency are what the ramp
measures, so they cannot be its stop rule), and the next level: up by a step while steps pass,
then bisection between the last good and the first bad level."""

from __future__ import annotations

from dataclasses import replace

from comfyload.analysis.metrics import judge_units, units_of
from comfyload.common.records import by_kind, event

STEP_METRICS = ("latency_p95", "error_rate")
SETTLE_FRACTION = 0.2  # the first 20 % of each step is its warm-up
GPU_SATURATED_PCT = 90.0


def window(records, start: float, end: float) -> list[dict]:
    """Renders sent in [start, end) and finished by `end`."""
    return [
        r
        for r in units_of(by_kind(records))
        if start <= r["intended_send_ts"] < end and r.get("done_ts") is not None and r["done_ts"] <= end
    ]


def mean_gpu_utilisation(records, start: float, end: float):
    values = [
        r["util_gpu"]
        for r in records
        if r.get("kind") == "gpu" and start <= r.get("ts", 0) < end and r.get("util_gpu") is not None
    ]
    return sum(values) / len(values) if values else None


def judge_step(harness, users: int, start: float, end: float) -> dict:
    """The verdict of one step, as an event record."""
    records = list(harness.recent)
    # the step's own window opens after its warm-up and once the work sent at the previous level
    # has finished (stepping down, a departing user's prompt may still be queued ahead)
    carried = [r["done_ts"] for r in units_of(by_kind(records)) if r["intended_send_ts"] < start and r.get("done_ts")]
    settled = max(start + (end - start) * SETTLE_FRACTION, max(carried, default=start))
    units = window(records, settled, end)
    targets = replace(harness.sla, warmup_seconds=0, warmup_prompts=0)
    verdicts = judge_units(units, targets, settled, end, label=f"ramp step {users}")
    gpu = mean_gpu_utilisation(records, start, end)
    breached = [m for m in STEP_METRICS if verdicts[m].passed is False]
    if gpu is not None and gpu >= GPU_SATURATED_PCT:
        breached.append("gpu_saturated")
    if not units:
        breached.append("no_completions")
    return step_event(users, start, settled, end, units, verdicts, not breached, breached, gpu_util_mean=gpu)


def step_event(
    users: int,
    start: float,
    settled: float,
    end: float,
    units: list,
    verdicts: dict,
    passed: bool,
    breached: list,
    **more,
) -> dict:
    """The `ramp.step` event both ramps write (the report's ramp table reads it)."""
    return event(
        "ramp.step",
        users=users,
        start_ts=start,
        settled_ts=settled,
        end_ts=end,
        renders=len(units),
        images_per_min=verdicts["throughput"].measured,
        p95_s=verdicts["latency_p95"].measured,
        error_pct=verdicts["error_rate"].measured,
        passed=passed,
        breached=breached,
        **more,
    )


def next_level(passed: dict, level: int, step: int, maximum: int):
    """`passed`: users -> bool for every step judged so far. None = the ramp is over."""
    good = [u for u, ok in passed.items() if ok]
    bad = [u for u, ok in passed.items() if not ok]
    best, worst = max(good, default=None), min(bad, default=None)
    if worst is None:
        return None if level >= maximum else min(level + step, maximum)
    if best is None or worst - best <= 1:
        return None
    return (best + worst) // 2


def knee_event(steps: dict, unit: str, maximum: int | None = None) -> dict:
    """`steps`: users -> ramp.step event. The knee: the most users whose step met the SLA;
    `maximum` (the ramp's --ramp-max) says whether a ramp that never failed stopped at its ceiling."""
    good = [s for s in steps.values() if s["passed"]]
    knee = max(good, key=lambda s: s["users"]) if good else None
    return event(
        "ramp.knee",
        users=knee["users"] if knee else 0,
        unit=unit,
        window=[knee["settled_ts"], knee["end_ts"]] if knee else None,  # what the step was judged on
        images_per_min=knee["images_per_min"] if knee else None,
        p95_s=knee["p95_s"] if knee else None,
        first_breach=min((s["users"] for s in steps.values() if not s["passed"]), default=None),
        steps=sorted(steps),
        ramp_max=maximum,
    )


def knee_text(knee: dict) -> str:
    """A ramp's result in words. A knee is a limit only where a step above it failed; a ramp that
    never failed found a floor, not a knee: "no knee up to 40 books (the ramp's maximum)"."""
    unit = knee.get("unit", "users")
    predicted = f"; the model predicted {knee['predicted']}" if knee.get("predicted") is not None else ""
    if knee.get("first_breach") is None:
        top, maximum = knee.get("users"), knee.get("ramp_max")
        why = (
            "the ramp's maximum"
            if maximum is None or (top or 0) >= maximum
            else f"the highest step measured; the ramp's maximum is {maximum}"
        )
        return f"no knee up to {top} {unit} ({why}): capacity is at least {top}{predicted}"
    return f"knee: {knee.get('users')} {unit} within SLA; first breach at {knee['first_breach']}{predicted}"
