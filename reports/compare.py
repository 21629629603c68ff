"""`python -m reports compare A B`: run B against baseline A on every SLA figure — throughput, page
p95 and p99, error rate, recovery, books — and the median page latency (a slower page shows there
first, where a busy machine's stalls fill the tail), each with its noise: a per-request bootstrap interval
(reports/bootstrap.py) where the figure is a statistic of the requests, none where it is a count
the load sets (books) or a handful of outages (recovery); the verdict per figure (regression /
improvement / no change) by the `compare:` thresholds of sla.yaml. Two runs of different
workloads or different offered load are refused (--force compares them, flagged)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from comfyload.analysis.environment_diff import what_changed
from comfyload.analysis.metrics import calculate_metrics
from comfyload.analysis.sla import CompareThresholds, load_compare
from comfyload.common.errors import UserError
from reports.bootstrap import Sample, interval, resampled
from reports.figures import report_summary, targets_for
from reports.html_page import document, esc, fmt, table
from reports.metadata import run_metadata
from reports.run_folder import load_run

REGRESSION, IMPROVEMENT, NO_CHANGE, NOT_MEASURED = "regression", "improvement", "no change", "not measured"
NOT_JUDGED = "not judged"
# A quantile's bootstrap interval is too narrow when only a request or two lie beyond it (resamples
# of 40 requests put their p99 on the same one or two values): a tail figure is judged only where
# each run has at least this many requests beyond it (p95: 40 requests, p99: 200).
MIN_BEYOND_QUANTILE = 2
QUANTILE_OF = {"p95_ms": 0.95, "p99_ms": 0.99}


@dataclass
class Judged:
    metric: str
    unit: str
    baseline: float | None
    candidate: float | None
    baseline_ci: tuple | None
    candidate_ci: tuple | None
    diff_ci: tuple | None  # candidate - baseline
    delta_pct: float | None
    threshold: float
    threshold_unit: str  # "%" of the baseline, or "pp" (percentage points) for the error rate
    verdict: str
    method: str = "bootstrap"


@dataclass(frozen=True)
class Figure:
    """An SLA figure judged from the requests by bootstrap: Sample's statistic, its direction,
    the threshold key of `compare:`, the display scale (ms -> s)."""

    metric: str
    unit: str
    statistic: str
    higher_is_worse: bool
    threshold_key: str
    scale: float = 1.0
    relative: bool = True  # threshold in % of the baseline; else in the figure's own unit (points)


BOOTSTRAPPED = (
    Figure("p95 latency", "s", "p95_ms", True, "p95_pct", 1000.0),
    Figure("throughput", "images/min", "images_per_min", False, "throughput_pct"),
    Figure("p99 latency", "s", "p99_ms", True, "p99_pct", 1000.0),
    Figure("p50 latency", "s", "p50_ms", True, "p50_pct", 1000.0),
    Figure("error rate", "%", "error_pct", True, "error_rate_pp", relative=False),
)


def judge(figure: Figure, a: Sample, b: Sample, limits: CompareThresholds, rng: np.random.Generator) -> Judged:
    """A change counts when it passes its threshold and the bootstrap interval of B−A excludes zero."""
    threshold = getattr(limits, figure.threshold_key)
    va, vb = getattr(a, figure.statistic)(), getattr(b, figure.statistic)()
    ra, rb = (resampled(s, figure.statistic, limits.bootstrap_samples, rng) for s in (a, b))
    diff = rb - ra if len(ra) and len(rb) else np.array([])
    diff_ci = interval(diff, limits.confidence_pct)
    delta = None if va in (None, 0) or vb is None else 100.0 * (vb - va) / va
    change = delta if figure.relative else (None if va is None or vb is None else vb - va)
    verdict = NO_CHANGE if va is not None or vb is not None else NOT_MEASURED
    method = "bootstrap"
    if figure.statistic in QUANTILE_OF:
        needed = math.ceil(MIN_BEYOND_QUANTILE / (1.0 - QUANTILE_OF[figure.statistic]) - 1e-9)
        fewest = min(len(a.e2e_ms), len(b.e2e_ms))
        if fewest < needed and verdict != NOT_MEASURED:
            verdict, method = NOT_JUDGED, f"too few requests for its interval ({fewest} < {needed})"
    if change is not None and diff_ci is not None and method == "bootstrap":
        up, down = change > threshold and diff_ci[0] > 0, change < -threshold and diff_ci[1] < 0
        worse, better = (up, down) if figure.higher_is_worse else (down, up)
        verdict = REGRESSION if worse else IMPROVEMENT if better else NO_CHANGE

    def shown(v):
        return None if v is None else v / figure.scale

    def shown_ci(ci):
        return None if ci is None else (ci[0] / figure.scale, ci[1] / figure.scale)

    return Judged(
        figure.metric,
        figure.unit,
        shown(va),
        shown(vb),
        shown_ci(interval(ra, limits.confidence_pct)),
        shown_ci(interval(rb, limits.confidence_pct)),
        shown_ci(diff_ci),
        delta,
        threshold,
        "%" if figure.relative else "pp",
        verdict,
        method,
    )


def longest_recovery(recoveries: list) -> float | None:
    """The recovery figure of the metrics model: the longest; inf when one never recovered."""
    if not recoveries:
        return None
    return float("inf") if any(r is None for r in recoveries) else max(recoveries)


def judge_recovery(a: Sample, b: Sample, limits: CompareThresholds) -> Judged:
    """A handful of outages (a drill's one or two) gives no interval: the threshold alone decides,
    and a candidate that never recovered where the baseline did is a regression."""
    va, vb = longest_recovery(a.recovery_s), longest_recovery(b.recovery_s)
    method = f"no interval: {len(a.recovery_s)} vs {len(b.recovery_s)} outage(s)"
    verdict = NOT_MEASURED if va is None and vb is None else NO_CHANGE
    delta = None
    if va is not None and vb is not None and np.isfinite(va) and np.isfinite(vb) and va > 0:
        delta = 100.0 * (vb - va) / va
        limit = limits.recovery_pct
        verdict = REGRESSION if delta > limit else IMPROVEMENT if delta < -limit else NO_CHANGE
    elif vb is not None and not np.isfinite(vb) and (va is None or np.isfinite(va)):
        verdict = REGRESSION
    elif vb is not None and va is None:
        verdict = REGRESSION  # an outage the baseline never had: surfaced, not hidden as "no change"
    return Judged("recovery", "s", va, vb, None, None, None, delta, limits.recovery_pct, "%", verdict, method)


def judge_books(a: Sample, b: Sample) -> Judged:
    """Simultaneous books are set by the load (users) or found by a ramp: a count, no interval;
    fewer books than the baseline held is a regression."""
    va, vb = a.books, b.books
    verdict = NOT_MEASURED if va is None and vb is None else NO_CHANGE
    delta = None if va in (None, 0) or vb is None else 100.0 * (vb - va) / va
    if va is not None and vb is not None:
        verdict = REGRESSION if vb < va else IMPROVEMENT if vb > va else NO_CHANGE
    method = "a count set by the load: no interval"
    return Judged("books", "books", va, vb, None, None, None, delta, 0, "%", verdict, method)


def side_by_side(sa: dict, sb: dict) -> list[tuple]:
    """(figure, A, B, delta, delta %) for the figures both summaries have."""

    def e2e(s, q):
        v = s["e2e_ms"].get(q)
        return None if v is None else v / 1000.0

    def mean_s(s, key):
        v = s[key].get("mean")
        return None if v is None else v / 1000.0

    def gpu(s, key):
        return (s["gpu"] or [{}])[0].get(key)

    figures = [
        ("images per minute", lambda s: s["images_per_minute"]),
        ("error rate %", lambda s: s["error_rate_pct"]),
        ("prompts submitted", lambda s: s["prompts_submitted"]),
        ("prompts failed", lambda s: s["prompts_failed"]),
        *[(f"e2e {q} (s)", lambda s, q=q: e2e(s, q)) for q in ("p50", "p90", "p95", "p99", "max")],
        ("queue wait mean (s)", lambda s: mean_s(s, "queue_wait_ms")),
        ("execution mean (s)", lambda s: mean_s(s, "execution_ms")),
        ("download mean (s)", lambda s: mean_s(s, "download_ms")),
        ("GPU 0 util peak %", lambda s: gpu(s, "util_peak_pct")),
        ("GPU 0 util mean %", lambda s: gpu(s, "util_mean_pct")),
        ("GPU 0 VRAM peak MB", lambda s: gpu(s, "vram_peak_mb")),
        ("GPU 0 power mean W", lambda s: gpu(s, "power_mean_w")),
    ]
    rows = []
    for name, get in figures:
        a, b = get(sa), get(sb)
        if a is None and b is None:
            continue
        delta = None if a is None or b is None else b - a
        pct = None if delta is None or not a else 100.0 * delta / a
        rows.append((name, a, b, delta, pct))
    return rows


WORKLOAD_KEYS = ("workflow", "user_class", "book_profile", "arrival_unit")


def workload_of(meta: dict) -> dict:
    """What a run measured: its workflow (by content), user class, book profile, arrival unit."""
    params = meta.get("parameters") if isinstance(meta.get("parameters"), dict) else {}
    classes = params.get("user_classes") if isinstance(params.get("user_classes"), list) else []
    user_class = ",".join(sorted(map(str, classes)))
    workflow = meta.get("workflow") if isinstance(meta.get("workflow"), dict) else {}
    return {
        "workflow": f"{workflow.get('name')} ({str(workflow.get('sha256'))[:12]})",
        "user_class": user_class or None,
        "book_profile": params.get("book_profile")
        if "BookUser" in classes or params.get("arrival_unit") == "book"
        else None,
        "arrival_unit": params.get("arrival_unit") if "OpenLoopUser" in classes else None,
    }


def workload_differences(meta_a: dict, meta_b: dict) -> list[str]:
    a, b = workload_of(meta_a), workload_of(meta_b)
    return [f"{k} {a[k]} vs {b[k]}" for k in WORKLOAD_KEYS if a[k] != b[k]]


LOAD_KEYS = (("num_users", "users"), ("arrival_rate", "arrival rate"), ("jobs", "jobs"), ("run_time", "run time"))


def load_of(meta: dict) -> dict:
    """The load a run was offered: users, arrival rate (open loop only), jobs, run time (s)."""
    params = meta.get("parameters") if isinstance(meta.get("parameters"), dict) else {}
    classes = params.get("user_classes") if isinstance(params.get("user_classes"), list) else []
    return {
        label: (params.get(key) if key != "arrival_rate" or "OpenLoopUser" in classes else None)
        for key, label in LOAD_KEYS
    }


def load_differences(meta_a: dict, meta_b: dict) -> list[str]:
    a, b = load_of(meta_a), load_of(meta_b)
    return [f"{k} {a[k]} vs {b[k]}" for k in a if a[k] != b[k]]


def compare_runs(dir_a, dir_b, sla_path, seed: int = 0, force: bool = False) -> dict:
    """Refuses (UserError) two runs of different workloads or offered different load unless
    `force`; a candidate with no success at all is a regression, whatever its intervals say."""
    limits = load_compare(sla_path)
    runs = [load_run(d) for d in (dir_a, dir_b)]
    differences = workload_differences(runs[0].meta, runs[1].meta)
    load = load_differences(runs[0].meta, runs[1].meta)
    if differences and not force:
        raise UserError(
            f"these runs measured different workloads ({'; '.join(differences)}): "
            "their figures are not comparable (--force compares them anyway)"
        )
    if load and not force:
        raise UserError(
            f"these runs were offered different load ({'; '.join(load)}): "
            "their figures are not comparable (--force compares them anyway)"
        )
    summaries, samples = [], []
    for run in runs:
        targets = targets_for(run)
        summaries.append(report_summary(run, targets))
        samples.append(Sample.from_metrics(calculate_metrics(run.records, targets)))
    rng = np.random.default_rng(seed)
    judged = [judge(f, *samples, limits, rng) for f in BOOTSTRAPPED]
    judged += [judge_recovery(*samples, limits), judge_books(*samples)]
    verdicts = {j.verdict for j in judged}
    overall = REGRESSION if REGRESSION in verdicts else IMPROVEMENT if IMPROVEMENT in verdicts else NO_CHANGE
    notes = [f"workloads differ ({'; '.join(differences)}), compared with --force"] if differences else []
    notes += [f"offered load differs ({'; '.join(load)}), compared with --force"] if load else []
    if not summaries[1]["units"]["ok"]:
        overall = REGRESSION
        notes.append("the candidate rendered nothing: no success at all is a regression")
    elif not summaries[0]["units"]["ok"]:
        notes.append("the baseline rendered nothing: there is nothing to compare against")
    return {
        "baseline": runs[0],
        "candidate": runs[1],
        "summaries": summaries,
        "judged": judged,
        "verdict": overall,
        "limits": limits,
        "notes": notes,
        "changed": what_changed(runs[0].meta, runs[1].meta),
    }


def noise_method(limits: CompareThresholds) -> str:
    return (
        f"Noise: per-request bootstrap of each run's judged units ({limits.bootstrap_samples} resamples, "
        f"{limits.confidence_pct:g} % intervals); a change counts when it passes its threshold and the "
        "interval of B−A excludes zero. p95 and p99 are judged where each run has at least "
        f"{MIN_BEYOND_QUANTILE} requests beyond them. Recovery and books carry no interval "
        "(a few outages; a count set by the load)."
    )


def _ci(ci) -> str:
    return "–" if ci is None else f"[{ci[0]:.4g}, {ci[1]:.4g}]"


def _threshold(j: Judged) -> str:
    return "any drop" if j.metric == "books" else f"{j.threshold:g} {j.threshold_unit}"


def judged_rows(result: dict) -> list[tuple]:
    """(figure, baseline, its CI, candidate, its CI, Δ %, B−A CI, threshold, verdict) per figure."""
    return [
        (
            f"{j.metric} ({j.unit})",
            j.baseline,
            _ci(j.baseline_ci),
            j.candidate,
            _ci(j.candidate_ci),
            j.delta_pct,
            _ci(j.diff_ci) if j.method == "bootstrap" else j.method,
            _threshold(j),
            j.verdict,
        )
        for j in result["judged"]
    ]


def format_judged(result: dict) -> list[str]:
    lines = []
    for j in result["judged"]:
        delta = "–" if j.delta_pct is None else f"{j.delta_pct:+.1f} %"
        noise = f"B−A CI {_ci(j.diff_ci)}" if j.method == "bootstrap" else j.method
        lines.append(
            f"  {j.metric:<12} {fmt(j.baseline)} → {fmt(j.candidate)} {j.unit}  "
            f"({delta}, {noise}, threshold {_threshold(j)}): {j.verdict}"
        )
    return lines


def format_compare(result: dict) -> str:
    from comfyload.analysis.environment_diff import format_changes

    a, b = result["baseline"].run_id, result["candidate"].run_id
    lines = [f"compare: baseline {a}  vs  candidate {b}", *format_judged(result)]
    lines += [f"note: {n}" for n in result["notes"]]
    lines += format_changes(result["changed"])
    lines.append(noise_method(result["limits"]))
    lines.append(f"verdict: {result['verdict'].upper()}")
    return "\n".join(lines)


JUDGED_HEADER = ("figure", "A", "A CI", "B", "B CI", "Δ %", "B−A CI / noise", "threshold", "verdict")


def render_compare(result: dict) -> str:
    from comfyload.analysis.environment_diff import change_rows

    a, b = result["baseline"], result["candidate"]
    css = "fail" if result["verdict"] == REGRESSION else "pass"
    judged = table(JUDGED_HEADER, judged_rows(result))
    figures = table(("figure", "A", "B", "Δ", "Δ %"), side_by_side(*result["summaries"]))
    meta_a, meta_b = dict(run_metadata(a.meta)), dict(run_metadata(b.meta))
    environment = table(("", "A", "B"), [(k, meta_a[k], meta_b.get(k)) for k in meta_a])
    changes = change_rows(result["changed"])
    body = (
        f"<h1>ComfyLoad comparison</h1><p>baseline A <b>{esc(a.run_id)}</b> · candidate B <b>{esc(b.run_id)}</b></p>"
        f'<p class="verdict {css}">Verdict: {esc(result["verdict"].upper())}</p>'
        + "".join(f"<p><b>Note:</b> {esc(n)}</p>" for n in result["notes"])
        + f"<p>{esc(noise_method(result['limits']))}</p>"
        + judged
        + "<h2>What changed</h2>"
        + (table(("what", "A", "B"), changes) if changes else "<p>No environment change.</p>")
        + "<h2>Figures side by side</h2>"
        + figures
        + "<h2>Environment</h2>"
        + environment
    )
    return document(f"ComfyLoad comparison {a.run_id} vs {b.run_id}", body)


def run_compare(dir_a, dir_b, sla_path, html_path=None, seed: int = 0, force: bool = False) -> bool:
    """Prints the comparison, writes the page; True when B regressed."""
    result = compare_runs(dir_a, dir_b, sla_path, seed, force)
    out = Path(html_path) if html_path else Path(dir_b) / "compare.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_compare(result), encoding="utf-8")
    print(format_compare(result))
    print(f"page: {out}")
    return result["verdict"] == REGRESSION
