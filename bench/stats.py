"""The benchmark's arithmetic, kept pure so it can be unit-tested (tests/test_bench_stats.py)."""

from __future__ import annotations

import math


def percentile(values, q: float) -> float | None:
    """Exact percentile with linear interpolation between closest ranks (numpy's default, and
    what reports/ uses); q in [0, 100]. None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def throughput(sent_times, done_times) -> float | None:
    """Completed prompts per second: count / (last done - first sent), client epoch seconds."""
    done = [d for d in done_times if d is not None]
    if not done or not sent_times:
        return None
    span = max(done) - min(sent_times)
    return len(done) / span if span > 0 else None


def pooled_throughput(runs) -> float | None:
    """Several runs as one: all their prompts over the sum of their spans. runs: [(count, span_s)]."""
    count = sum(c for c, _ in runs)
    span = sum(s for _, s in runs)
    return count / span if span > 0 else None


def client_added_ms(sent_s: float, done_s: float, create_time_ms: int, execution_end_ms: int) -> float:
    """End-to-end (client clock) minus the server's own span, create_time -> terminal message
    timestamp (server clock; both on this machine)."""
    return (done_s - sent_s) * 1000.0 - (execution_end_ms - create_time_ms)


def abs_errors_ms(measured_ms, expected_ms: float) -> dict:
    """Mean, median and max absolute error of measured durations against a known one."""
    errors = [abs(m - expected_ms) for m in measured_ms]
    if not errors:
        return {"n": 0, "mean": None, "median": None, "max": None}
    return {"n": len(errors), "mean": sum(errors) / len(errors), "median": percentile(errors, 50), "max": max(errors)}


def slowdown_pct(without: float, with_: float) -> float:
    """How much slower the server got: 5.0 means 5 % fewer prompts/s with the load than without."""
    return (1.0 - with_ / without) * 100.0


def after_warmup(items, key, fraction: float = 0.05) -> list:
    """The items without the first `fraction` of them by `key` (send time): a run's first
    prompts meet a cold process and connection pool, on both sides alike."""
    ordered = sorted(items, key=key)
    return ordered[int(len(ordered) * fraction) :]


def spread(values) -> float:
    """max - min: how far repeated measurements of one condition disagree (the noise floor)."""
    values = list(values)
    return max(values) - min(values) if values else 0.0


def relative_spread(values) -> float:
    """spread / median, as a fraction."""
    values = list(values)
    mid = median(values)
    return spread(values) / mid if values and mid else 0.0


def judge(ok: bool, miss_by: float, noise: float) -> str:
    """PASS when the target is met; NOISY when it is missed by less than the run's own noise
    (repeats of one condition disagree by more than the miss: not resolvable in this run); else MISS."""
    if ok:
        return "PASS"
    return "NOISY" if miss_by <= noise else "MISS"


def median(values) -> float | None:
    return percentile(values, 50)
