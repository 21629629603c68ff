"""`python -m reports compare A B`: run B against baseline A. p95 latency and throughput get
per-request bootstrap confidence intervals and a verdict (regression / improvement / no change)
by the `compare:` thresholds of sla.yaml; the other figures are shown side by side."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from comfyload.analysis.metrics import calculate_metrics
from comfyload.analysis.sla import CompareThresholds, load_compare
from comfyload.common.errors import UserError
from reports.bootstrap import Sample, interval, resampled
from reports.figures import report_summary, targets_for
from reports.html_page import document, esc, fmt, table
from reports.metadata import run_metadata
from reports.run_folder import load_run

REGRESSION, IMPROVEMENT, NO_CHANGE = "regression", "improvement", "no change"


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
    threshold_pct: float
    verdict: str


def judge(
    metric: str, higher_is_worse: bool, a: Sample, b: Sample, limits: CompareThresholds, rng: np.random.Generator
) -> Judged:
    statistic = "p95_ms" if metric == "p95" else "images_per_min"
    threshold = limits.p95_pct if metric == "p95" else limits.throughput_pct
    va, vb = getattr(a, statistic)(), getattr(b, statistic)()
    ra, rb = (resampled(s, statistic, limits.bootstrap_samples, rng) for s in (a, b))
    diff = rb - ra if len(ra) and len(rb) else np.array([])
    diff_ci = interval(diff, limits.confidence_pct)
    delta = None if va in (None, 0) or vb is None else 100.0 * (vb - va) / va
    verdict = NO_CHANGE
    if delta is not None and diff_ci is not None:
        worse = delta > threshold and diff_ci[0] > 0 if higher_is_worse else delta < -threshold and diff_ci[1] < 0
        better = delta < -threshold and diff_ci[1] < 0 if higher_is_worse else delta > threshold and diff_ci[0] > 0
        verdict = REGRESSION if worse else IMPROVEMENT if better else NO_CHANGE
    scale = 1000.0 if metric == "p95" else 1.0

    def shown(v):
        return None if v is None else v / scale

    def shown_ci(ci):
        return None if ci is None else (ci[0] / scale, ci[1] / scale)

    return Judged(
        "p95 latency" if metric == "p95" else "throughput",
        "s" if metric == "p95" else "images/min",
        shown(va),
        shown(vb),
        shown_ci(interval(ra, limits.confidence_pct)),
        shown_ci(interval(rb, limits.confidence_pct)),
        shown_ci(diff_ci),
        delta,
        threshold,
        verdict,
    )


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


def compare_runs(dir_a, dir_b, sla_path, seed: int = 0, force: bool = False) -> dict:
    """Refuses (UserError) two runs of different workloads unless `force`; a candidate with no
    success at all is a regression, whatever its intervals say."""
    limits = load_compare(sla_path)
    runs = [load_run(d) for d in (dir_a, dir_b)]
    differences = workload_differences(runs[0].meta, runs[1].meta)
    if differences and not force:
        raise UserError(
            f"these runs measured different workloads ({'; '.join(differences)}): "
            "their figures are not comparable (--force compares them anyway)"
        )
    summaries, samples = [], []
    for run in runs:
        targets = targets_for(run)
        summaries.append(report_summary(run, targets))
        samples.append(Sample.from_population(calculate_metrics(run.records, targets).population))
    rng = np.random.default_rng(seed)
    judged = [judge("p95", True, *samples, limits, rng), judge("throughput", False, *samples, limits, rng)]
    verdicts = {j.verdict for j in judged}
    overall = REGRESSION if REGRESSION in verdicts else IMPROVEMENT if IMPROVEMENT in verdicts else NO_CHANGE
    notes = [f"workloads differ ({'; '.join(differences)}), compared with --force"] if differences else []
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
    }


def _ci(ci) -> str:
    return "–" if ci is None else f"[{ci[0]:.4g}, {ci[1]:.4g}]"


def format_compare(result: dict) -> str:
    a, b = result["baseline"].run_id, result["candidate"].run_id
    lines = [f"compare: baseline {a}  vs  candidate {b}"]
    for j in result["judged"]:
        lines.append(
            f"  {j.metric:<12} {fmt(j.baseline)} → {fmt(j.candidate)} {j.unit}  "
            f"({'–' if j.delta_pct is None else f'{j.delta_pct:+.1f} %'}, difference CI {_ci(j.diff_ci)}, "
            f"threshold {j.threshold_pct:g} %): {j.verdict}"
        )
    lines += [f"note: {n}" for n in result["notes"]]
    lines.append(f"verdict: {result['verdict'].upper()}")
    return "\n".join(lines)


def render_compare(result: dict) -> str:
    a, b = result["baseline"], result["candidate"]
    limits = result["limits"]
    css = "fail" if result["verdict"] == REGRESSION else "pass"
    judged = table(
        ("metric", f"A: {a.run_id}", "A CI", f"B: {b.run_id}", "B CI", "Δ %", "B−A CI", "threshold %", "verdict"),
        [
            (
                j.metric + f" ({j.unit})",
                j.baseline,
                _ci(j.baseline_ci),
                j.candidate,
                _ci(j.candidate_ci),
                j.delta_pct,
                _ci(j.diff_ci),
                j.threshold_pct,
                j.verdict,
            )
            for j in result["judged"]
        ],
    )
    figures = table(("figure", "A", "B", "Δ", "Δ %"), side_by_side(*result["summaries"]))
    meta_a, meta_b = dict(run_metadata(a.meta)), dict(run_metadata(b.meta))
    environment = table(("", "A", "B"), [(k, meta_a[k], meta_b.get(k)) for k in meta_a])
    body = (
        f"<h1>ComfyLoad comparison</h1><p>baseline A <b>{esc(a.run_id)}</b> · candidate B <b>{esc(b.run_id)}</b></p>"
        f'<p class="verdict {css}">Verdict: {esc(result["verdict"].upper())}</p>'
        + "".join(f"<p><b>Note:</b> {esc(n)}</p>" for n in result["notes"])
        + f"<p>Per-request bootstrap, {limits.bootstrap_samples} resamples, {limits.confidence_pct:g} % intervals. "
        "A change counts when it passes its threshold and the interval of B−A excludes zero.</p>"
        + judged
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
