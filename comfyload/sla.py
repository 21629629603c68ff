"""SLA targets (sla.yaml) and their evaluation over a window of records. The one place this math
lives: the headless exit code, the ramp shapes and the reports all call `evaluate`."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from comfyload.errors import UserError
from comfyload.yamlfile import read_mapping

TARGET_KEYS = ("throughput_images_per_min", "concurrency_books", "latency_p95_s", "error_budget_pct", "recovery_s")


@dataclass(frozen=True)
class SlaTargets:
    throughput_images_per_min: float = 20
    concurrency_books: float = 5
    latency_p95_s: float = 45
    error_budget_pct: float = 2
    recovery_s: float = 120
    warmup_seconds: float = 0
    warmup_prompts: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class MetricVerdict:
    metric: str
    comparison: str        # ">=" or "<="
    target: float
    measured: float | None  # None: this run did not measure it
    unit: str
    passed: bool | None     # None: not measured, so it cannot fail the run

    def line(self) -> str:
        shown = "not measured" if self.measured is None else f"{self.measured:.4g} {self.unit}"
        state = {True: "PASS", False: "FAIL", None: "n/a "}[self.passed]
        return f"{state}  {self.metric:<12} {shown:<22} target {self.comparison} {self.target:g} {self.unit}"


REPO = Path(__file__).resolve().parent.parent


def repo_path(path) -> Path:
    """A relative path that is not under the working directory is looked up in the checkout
    (`sla.yaml`, `scenarios/faults/sla/...` work from anywhere)."""
    path = Path(path)
    return path if path.is_absolute() or path.exists() else REPO / path


def read_sla_file(path) -> dict:
    """The SLA file as a mapping: one clear error for a missing file or bad YAML."""
    return read_mapping(repo_path(path), "SLA file", empty_ok=False)


def load_sla(path) -> SlaTargets:
    path = Path(path)
    raw = read_sla_file(path)
    warmup = raw.pop("warmup", None) or {}
    if not isinstance(warmup, dict) or set(warmup) - {"seconds", "prompts"}:
        raise UserError(f"{path}: warmup must be a mapping with 'seconds' and/or 'prompts'")
    unknown = set(raw) - set(TARGET_KEYS) - {"compare"}
    if unknown:
        raise UserError(f"{path}: unknown SLA key(s) {', '.join(sorted(unknown))}; known: {', '.join(TARGET_KEYS)}, warmup")
    values = {k: raw[k] for k in TARGET_KEYS if k in raw}
    values["warmup_seconds"] = warmup.get("seconds", 0) or 0
    values["warmup_prompts"] = warmup.get("prompts", 0) or 0
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise UserError(f"{path}: {key} must be a number >= 0, not {value!r}")
    values["warmup_prompts"] = int(values["warmup_prompts"])
    return SlaTargets(**values)



@dataclass(frozen=True)
class CompareThresholds:
    """`compare:` in sla.yaml: how large a change `python -m reports compare` calls a regression
    (or an improvement). A change counts only past its threshold and when its bootstrap
    confidence interval excludes zero, so noise between two runs of the same build passes."""
    p95_pct: float = 10             # p95 latency up (regression) or down (improvement) by more than this
    throughput_pct: float = 10      # images/min down (regression) or up (improvement) by more than this
    confidence_pct: float = 95      # of the bootstrap intervals
    bootstrap_samples: int = 1000   # resamples per interval


def load_compare(path) -> CompareThresholds:
    path = Path(path)
    section = read_sla_file(path).get("compare") or {}
    known = tuple(CompareThresholds.__dataclass_fields__)
    if not isinstance(section, dict) or set(section) - set(known):
        raise UserError(f"{path}: compare must be a mapping with keys among {', '.join(known)}")
    for key, value in section.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise UserError(f"{path}: compare.{key} must be a number >= 0, not {value!r}")
    if not 0 < section.get("confidence_pct", 95) < 100:
        raise UserError(f"{path}: compare.confidence_pct must be between 0 and 100")
    if int(section.get("bootstrap_samples", 1000)) < 100:
        raise UserError(f"{path}: compare.bootstrap_samples must be at least 100")
    if "bootstrap_samples" in section:
        section = {**section, "bootstrap_samples": int(section["bootstrap_samples"])}
    return CompareThresholds(**section)

def percentiles(values, qs) -> list | None:
    """Several exact percentiles from one conversion of the values."""
    if len(values) == 0:
        return None
    return [float(x) for x in np.percentile(np.asarray(values, dtype=float), qs)]


def percentile(values, q: float) -> float | None:
    """Exact percentile (linear interpolation between closest ranks, as numpy and pandas do)."""
    if len(values) == 0:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q))


def by_kind(records) -> dict:
    """Records grouped by `kind` in one pass (a 24-hour soak holds a million of them: every
    figure below reads its group instead of scanning them all again)."""
    kinds = defaultdict(list)
    for r in records:
        kinds[r.get("kind")].append(r)
    return kinds


def renders(records) -> list[dict]:
    return units_of(by_kind(records))


def units_of(kinds: dict) -> list[dict]:
    """The units the SLA counts: pages when the run had books (a page's final state after its
    retries), else prompts. A prompt cut off because the run itself stopped is no failure of
    the server and is left out."""
    if kinds.get("page"):
        return kinds["page"]
    return [r for r in kinds.get("prompt", ()) if r.get("final", True) and r.get("error_type") != "harness_stopped"]


def steady_state(units: list[dict], targets: SlaTargets) -> list[dict]:
    """Drops the warm-up: the first `warmup_prompts` by intended send time and anything sent in
    the first `warmup_seconds` of the run."""
    units = sorted(units, key=lambda r: r["intended_send_ts"])
    if not units:
        return []
    start = units[0]["intended_send_ts"] + targets.warmup_seconds
    return [r for r in units[targets.warmup_prompts:] if r["intended_send_ts"] >= start]


def window_minutes(units: list[dict]) -> float:
    """From the first intended send in the window to the last completion."""
    start = min(r["intended_send_ts"] for r in units)
    end = max(r["done_ts"] for r in units if r.get("done_ts") is not None)
    return max(end - start, 1e-9) / 60.0


def peak_concurrent_books(books) -> int | None:
    spans = [(r["start_ts"], r["done_ts"]) for r in books if r.get("done_ts")]
    if not spans:
        return None
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda x: (x[0], x[1]))
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def worst_recovery_s(events) -> float | None:
    times = [r["recovery_s"] for r in events if r.get("recovery_s") is not None]
    return max(times) if times else None


def knee_of(events) -> dict | None:
    knees = [r for r in events if r.get("name") == "ramp.knee"]
    return knees[-1] if knees else None


def verdict_kinds(kinds: dict) -> dict:
    """What a run's verdict is judged on: everything, or for a ramp, the knee step's window
    (the most users that met the SLA) plus the knee itself."""
    knee = knee_of(kinds.get("event", []))
    if not knee or not knee.get("window"):
        return kinds
    start, end = knee["window"]
    units = [r for r in units_of(kinds) if start <= r["intended_send_ts"] < end and (r.get("done_ts") or end + 1) <= end]
    return by_kind(units + [knee])


def evaluate(records, targets: SlaTargets) -> list[MetricVerdict]:
    return evaluate_kinds(by_kind(records), targets)


def evaluate_kinds(kinds: dict, targets: SlaTargets, steady: list | None = None) -> list[MetricVerdict]:
    """`steady`: the steady-state units when the caller has them already (a sort saved)."""
    units = steady if steady is not None else steady_state(units_of(kinds), targets)
    done = [r for r in units if r.get("done_ts") is not None]
    ok = [r for r in done if r.get("outcome") == "success"]
    throughput = len(ok) / window_minutes(done) if done else None
    p95 = percentile([r["e2e_ms"] for r in ok], 95)
    error_pct = 100.0 * (len(units) - len(ok)) / len(units) if units else None
    events = kinds.get("event", [])
    knee = knee_of(events)
    books = knee["users"] if knee and knee.get("unit") == "books" else peak_concurrent_books(kinds.get("book", []))
    recovery = worst_recovery_s(events)

    def check(metric, comparison, target, measured, unit):
        passed = None if measured is None else (measured >= target if comparison == ">=" else measured <= target)
        return MetricVerdict(metric, comparison, target, measured, unit, passed)

    return [
        check("throughput", ">=", targets.throughput_images_per_min, throughput, "images/min"),
        check("concurrency", ">=", targets.concurrency_books, books, "books"),
        check("latency_p95", "<=", targets.latency_p95_s, None if p95 is None else p95 / 1000.0, "s"),
        check("error_rate", "<=", targets.error_budget_pct, error_pct, "%"),
        check("recovery", "<=", targets.recovery_s, recovery, "s"),
    ]


def breaches(verdicts: list[MetricVerdict]) -> list[MetricVerdict]:
    return [v for v in verdicts if v.passed is False]
