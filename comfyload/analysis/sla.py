"""SLA targets (sla.yaml), compare thresholds, and the verdict of one metric. The math that
judges a run against them is comfyload.analysis.metrics (one model for every figure)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from comfyload.common.errors import UserError
from comfyload.common.paths import repo_path
from comfyload.common.yamlfile import read_mapping, refuse_unknown_keys

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
    comparison: str  # ">=" or "<="
    target: float
    measured: float | None  # None: this run did not measure it
    unit: str
    passed: bool | None  # None: not measured, so it cannot fail the run
    note: str | None = None  # why, where the figure alone does not say (e.g. "not recovered")

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        shown = "not measured" if self.measured is None else f"{self.measured:.4g} {self.unit}"
        if self.note:
            shown = self.note
        state = {True: "PASS", False: "FAIL", None: "n/a "}[self.passed]
        return f"{state}  {self.metric:<12} {shown:<22} target {self.comparison} {self.target:g} {self.unit}"


def read_sla_file(path) -> dict:
    """The SLA file as a mapping: one clear error for a missing file or bad YAML."""
    return read_mapping(repo_path(path), "SLA file", empty_ok=False)


def load_sla(path) -> SlaTargets:
    path = Path(path)
    raw = read_sla_file(path)
    refuse_unknown_keys(raw, (*TARGET_KEYS, "warmup", "compare"), path, "SLA key")
    warmup = raw.pop("warmup", None) or {}
    if not isinstance(warmup, dict):
        raise UserError(f"{path}: warmup must be a mapping with 'seconds' and/or 'prompts'")
    refuse_unknown_keys(warmup, ("seconds", "prompts"), path, "warmup key")
    values = {k: raw[k] for k in TARGET_KEYS if k in raw}
    values["warmup_seconds"] = warmup.get("seconds", 0) or 0
    values["warmup_prompts"] = warmup.get("prompts", 0) or 0
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise UserError(f"{path}: {key} must be a number >= 0, not {value!r}")
    if values.get("error_budget_pct", 0) > 100:
        raise UserError(
            f"{path}: error_budget_pct is a percentage of requests: 0 to 100, not {values['error_budget_pct']!r}"
        )
    values["warmup_prompts"] = int(values["warmup_prompts"])
    return SlaTargets(**values)


@dataclass(frozen=True)
class CompareThresholds:
    """`compare:` in sla.yaml: how large a change `python -m reports compare` calls a regression
    (or an improvement). A change counts only past its threshold and when its bootstrap
    confidence interval excludes zero, so noise between two runs of the same build passes."""

    p95_pct: float = 10  # p95 latency up (regression) or down (improvement) by more than this
    throughput_pct: float = 10  # images/min down (regression) or up (improvement) by more than this
    p99_pct: float = 20  # p99 latency: fewer requests in the tail, so a wider band
    p50_pct: float = 10  # median page latency: a slower page shows here first, past the tail's stalls
    error_rate_pp: float = 1  # error rate up by more than this many percentage points
    recovery_pct: float = 25  # the longest recovery after an outage up by more than this (no interval)
    confidence_pct: float = 95  # of the bootstrap intervals
    bootstrap_samples: int = 1000  # resamples per interval


def load_compare(path) -> CompareThresholds:
    path = Path(path)
    section = read_sla_file(path).get("compare") or {}
    known = tuple(CompareThresholds.__dataclass_fields__)
    if not isinstance(section, dict):
        raise UserError(f"{path}: compare must be a mapping with keys among {', '.join(known)}")
    refuse_unknown_keys(section, known, path, "compare key")
    for key, value in section.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise UserError(f"{path}: compare.{key} must be a number >= 0, not {value!r}")
    confidence = section.get("confidence_pct", 95)
    if 0 < confidence < 1:
        raise UserError(
            f"{path}: compare.confidence_pct is a percentage: {confidence!r} means {confidence:g} %, "
            f"not {confidence * 100:g} %; write {confidence * 100:g}"
        )
    if not 50 <= confidence < 100:
        raise UserError(f"{path}: compare.confidence_pct must be a percentage from 50 to below 100, not {confidence!r}")
    if section.get("throughput_pct", 10) > 100:
        raise UserError(
            f"{path}: compare.throughput_pct is a drop in percent: 0 to 100, not {section['throughput_pct']!r}"
        )
    if int(section.get("bootstrap_samples", 1000)) < 100:
        raise UserError(f"{path}: compare.bootstrap_samples must be at least 100")
    if "bootstrap_samples" in section:
        section = {**section, "bootstrap_samples": int(section["bootstrap_samples"])}
    return CompareThresholds(**section)
