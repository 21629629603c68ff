"""The adaptive ramp's statistics, without Locust.

A step asks one question: is the p95 page latency at this level within the target T? With n
completions of which m took longer than T, m is Binomial(n, p) where p = P(latency > T), and
"p95 <= T" is "p <= 0.05". The exact (Clopper-Pearson) interval for p decides the step as soon
as it excludes 0.05: a level far past the knee fails after a couple of completions, a level
well inside passes once enough pages (45 at 90 %) came in under T. Undecided steps run until
they hold the completions a p95 needs for a confidence interval of the asked width (the
distribution-free order-statistic interval: ranks n*q -/+ z*sqrt(n*q*(1-q))), then are judged
on the point estimate and marked undecided, which widens the knee's interval."""

from __future__ import annotations

import math
from statistics import NormalDist

Q = 0.95


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(Binomial(n, p) <= k), summed in log space (n up to tens of thousands)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    if p <= 0:
        return 1.0
    if p >= 1:
        return 0.0
    lp, lq = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq for i in range(k + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def _solve(f, lo: float = 0.0, hi: float = 1.0) -> float:
    """The p in [lo, hi] where the decreasing f(p) crosses 0 (bisection, 60 halvings)."""
    for _ in range(60):
        mid = (lo + hi) / 2
        if f(mid) > 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def exceedance_interval(m: int, n: int, confidence: float) -> tuple[float, float]:
    """Clopper-Pearson two-sided interval for p from m exceedances in n trials."""
    if n <= 0:
        return 0.0, 1.0
    a = (1 - confidence) / 2
    lower = 0.0 if m == 0 else _solve(lambda p: a - (1 - binom_cdf(m - 1, n, p)))
    upper = 1.0 if m == n else _solve(lambda p: binom_cdf(m, n, p) - a)
    return lower, upper


def step_verdict(latencies, target: float, confidence: float, q: float = Q):
    """True (p95 within target, decided), False (breached, decided) or None (not yet)."""
    n = len(latencies)
    m = sum(1 for x in latencies if x > target)
    lower, upper = exceedance_interval(m, n, confidence)
    if upper < 1 - q:
        return True
    if lower > 1 - q:
        return False
    return None


def completions_needed(width: float, confidence: float, q: float = Q) -> int:
    """Completions for the order-statistic interval of the q-quantile to span at most `width` in
    quantile level (e.g. 0.1: between the ~p90 and the ~p100 of the sample)."""
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    return math.ceil((2 * z) ** 2 * q * (1 - q) / width**2)


def quantile_interval(latencies, confidence: float, q: float = Q):
    """Distribution-free interval for the q-quantile: the order statistics at ranks
    n*q -/+ z*sqrt(n*q*(1-q)), clamped to the sample (None when empty)."""
    xs = sorted(latencies)
    n = len(xs)
    if n == 0:
        return None
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    half = z * math.sqrt(n * q * (1 - q))
    lo = max(0, math.floor(n * q - half) - 1)
    hi = min(n - 1, math.ceil(n * q + half) - 1)
    return xs[lo], xs[hi]


def next_level(passed: dict, predicted: int, maximum: int, hint: int | None = None):
    """Levels tried around the prediction: the predicted knee first, then up while steps pass (down
    while they fail) by 1, 2, 4 ... (a prediction far off costs log steps, not linear ones), then
    bisection once a pass and a failure are more than one apart. `hint`: the knee predicted again
    from the latest step (the service time drifts on a shared machine); the next level is the hint
    when it lies inside what the steps so far allow.
    `passed`: users -> bool. None = the knee is bracketed (or the bounds are reached)."""
    if not passed:
        return max(1, min(predicted, maximum))
    good = [u for u, ok in passed.items() if ok]
    bad = [u for u, ok in passed.items() if not ok]
    best, worst = max(good, default=0), min(bad, default=maximum + 1)
    if worst - best <= 1 or (not bad and best >= maximum) or (not good and worst <= 1):
        return None
    if hint is not None:
        return min(max(hint, best + 1), worst - 1)
    if not bad:
        return min(maximum, best + 2 ** (len(good) - 1))
    if not good:
        return max(1, worst - 2 ** (len(bad) - 1))
    return (best + worst) // 2


def knee_interval(steps: dict) -> tuple[int, int]:
    """(low, high) for the knee from every step's verdict: low is the highest decided pass below
    the first failure, high the lowest decided failure minus one. Undecided steps add no certainty."""
    bad_decided = [u for u, s in steps.items() if not s["passed"] and s.get("decided")]
    first_bad = min([u for u, s in steps.items() if not s["passed"]], default=None)
    good_decided = [
        u for u, s in steps.items() if s["passed"] and s.get("decided") and (first_bad is None or u < first_bad)
    ]
    low = max(good_decided, default=0)
    high = (min(bad_decided) - 1) if bad_decided else max(steps, default=0)
    return low, max(low, high)
