"""Per-request bootstrap confidence intervals for the SLA figures a run is compared on (throughput,
p95 and p99 latency, error rate), and for their difference between two runs: the requests of each
run are resampled with replacement, so an interval is the noise of that run's own requests."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from comfyload.analysis.metrics import percentile


@dataclass
class Sample:
    """What one run contributes: e2e latencies (ms) of the judged successes, and the gaps between
    consecutive successful completions (s) which, with the tail, sum to the judged window."""

    e2e_ms: np.ndarray
    gaps_s: np.ndarray
    tail_s: float  # window end after the last success (a failure finished last)
    ok_flags: np.ndarray = field(default_factory=lambda: np.array([]))  # 1.0 per judged success, 0.0 per failure
    recovery_s: list = field(default_factory=list)  # per outage; None: not recovered
    books: float | None = None  # the run's concurrency figure (peak simultaneous books, or the ramp's knee)

    @classmethod
    def from_metrics(cls, metrics) -> Sample:
        """From the metrics model's RunMetrics: its judged population, outages and books verdict."""
        sample = cls.from_population(metrics.population)
        sample.recovery_s = [o.recovery_s for o in metrics.outages]
        sample.books = next((v.measured for v in metrics.sla if v.metric == "concurrency"), None)
        return sample

    @classmethod
    def from_population(cls, pop) -> Sample:
        """From the metrics model's judged population: its successes and its load window."""
        ok = pop.ok()
        flags = np.array([1.0 if u.get("outcome") == "success" else 0.0 for u in pop.units])
        if pop.start_ts is None or not pop.units:
            return cls(np.array([]), np.array([]), 0.0, flags)
        start, end = pop.start_ts, pop.end_ts
        completions = np.sort(np.array([u["done_ts"] for u in ok], dtype=float))
        gaps = np.diff(np.concatenate(([start], completions)))
        tail = end - completions[-1] if len(completions) else end - start
        return cls(
            np.array([u["e2e_ms"] for u in ok], dtype=float),
            gaps if len(completions) else np.array([]),
            float(tail),
            flags,
        )

    def p95_ms(self, index=None):
        return percentile(self.e2e_ms if index is None else self.e2e_ms[index], 95)

    def p50_ms(self, index=None):
        return percentile(self.e2e_ms if index is None else self.e2e_ms[index], 50)

    def p99_ms(self, index=None):
        return percentile(self.e2e_ms if index is None else self.e2e_ms[index], 99)

    def error_pct(self, index=None):
        flags = self.ok_flags if index is None else self.ok_flags[index]
        return None if len(flags) == 0 else 100.0 * (1.0 - float(flags.mean()))

    def images_per_min(self, index=None):
        gaps = self.gaps_s if index is None else self.gaps_s[index]
        if len(gaps) == 0:
            return None
        return len(gaps) * 60.0 / max(float(gaps.sum()) + self.tail_s, 1e-9)


def resampled(sample: Sample, metric: str, samples: int, rng: np.random.Generator) -> np.ndarray:
    """`samples` values of the metric, each over a resample (with replacement) of the requests."""
    n = len({"images_per_min": sample.gaps_s, "error_pct": sample.ok_flags}.get(metric, sample.e2e_ms))
    if n == 0:
        return np.array([])
    statistic = getattr(sample, metric)
    return np.array([statistic(rng.integers(0, n, n)) for _ in range(samples)], dtype=float)


def interval(values: np.ndarray, confidence_pct: float) -> tuple[float, float] | None:
    if len(values) == 0:
        return None
    tail = (100.0 - confidence_pct) / 2.0
    return percentile(values, tail), percentile(values, 100.0 - tail)
