"""The report's figures: the metrics model's summary (comfyload.analysis.metrics), unchanged, plus what a
release manager reads next (errors by type, faults, ramp steps, GPU, bottleneck nodes,
observations). Nothing here re-derives an SLA figure."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import fields

import pandas as pd

from comfyload.analysis.metrics import calculate_metrics
from comfyload.analysis.ramp import knee_text
from comfyload.analysis.sla import SlaTargets, load_sla
from comfyload.analysis.summary import summary_of
from comfyload.common.errors import UserError
from comfyload.common.paths import repo_path
from reports.run_folder import RunFolder

FLATTENED_GAIN_PCT = 10.0  # a ramp step adding less throughput than this has flattened
GPU_IDLE_PCT, GPU_SATURATED_PCT = 70.0, 95.0


def targets_for(run: RunFolder, sla_path=None) -> SlaTargets:
    """The SLA the run was judged against (meta.json), unless a file is given."""
    if sla_path:
        return load_sla(sla_path)
    recorded = run.meta.get("sla")
    if isinstance(recorded, dict):
        known = {f.name for f in fields(SlaTargets)}
        try:
            return SlaTargets(**{k: v for k, v in recorded.items() if k in known})
        except TypeError:
            raise UserError(f"{run.path / 'meta.json'}: `sla` is not a set of SLA targets") from None
    return load_sla(repo_path("sla.yaml"))


def report_summary(run: RunFolder, targets: SlaTargets) -> dict:
    metrics = calculate_metrics(run.kinds, targets, drill_verdict(run))
    summary = summary_of(metrics, run.kinds)
    pop = metrics.population
    summary.update(
        {
            "run_id": run.run_id,
            "scenario": run.meta.get("scenario"),
            "window": None
            if pop.start_ts is None
            else {"start_ts": pop.start_ts, "end_ts": pop.end_ts, "duration_s": pop.end_ts - pop.start_ts},
            "errors": errors_by_type(pop.units),
            "faults": fault_events(run.of_kind("event")),
            "ramp_steps": ramp_steps(run.of_kind("event")),
            "gpu": gpu_figures(run.of_kind("gpu")),
            "bottleneck_nodes": run.nodes.table()[:10],
        }
    )
    summary["observations"] = observations(summary, run.notes)
    return summary


def drill_verdict(run: RunFolder) -> dict | None:
    """fault_verdict.json: the drill's judgement, kept beside the records (never in them)."""
    path = run.path / "fault_verdict.json"
    if not path.exists():
        return None
    try:
        verdict = json.loads(path.read_text())
    except ValueError:
        raise UserError(f"{path}: not JSON") from None
    if not isinstance(verdict, dict) or "passed" not in verdict:
        raise UserError(f"{path}: not a drill verdict")
    return verdict


def errors_by_type(units: list[dict]) -> list[dict]:
    """Failed units of the judged population by outcome and error type, most frequent first."""
    failed = [u for u in units if u.get("outcome") != "success"]
    counts = Counter((u.get("outcome"), u.get("error_type")) for u in failed)
    examples = {}
    for u in failed:
        examples.setdefault((u.get("outcome"), u.get("error_type")), u)
    return [
        {
            "outcome": outcome,
            "error_type": error_type,
            "count": n,
            "pct_of_renders": 100.0 * n / len(units),
            "example_message": examples[(outcome, error_type)].get("error_message"),
            "example_node": examples[(outcome, error_type)].get("error_node"),
        }
        for (outcome, error_type), n in counts.most_common()
    ]


def fault_events(records) -> list[dict]:
    """fault.* events (start, end, recovered with recovery_s), in time order."""
    events = [r for r in records if r.get("kind") == "event" and str(r.get("name", "")).startswith("fault.")]
    return sorted(events, key=lambda e: e.get("ts") or 0)


def ramp_steps(records) -> list[dict]:
    """The ramp shape's own per-step verdicts (ramp.step events), by users."""
    steps = [r for r in records if r.get("kind") == "event" and r.get("name") == "ramp.step"]
    return sorted(steps, key=lambda s: s.get("users") or 0)


def throttled(reasons) -> bool:
    """NVML lists `gpu_idle` among its clock event reasons: an idle GPU is not throttled."""
    reasons = reasons if isinstance(reasons, (list, tuple)) else []  # absent on a GPU that does not report them
    return any("idle" not in str(r).lower() and str(r).lower() != "none" for r in reasons)


def gpu_frame(records) -> pd.DataFrame | None:
    rows = [r for r in records if r.get("kind") == "gpu" and r.get("ts") is not None]
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    frame["gpu"] = frame["gpu"] if "gpu" in frame else frame.get("index", 0)
    frame["gpu"] = frame["gpu"].fillna(0)
    for column in ("util_gpu", "util_mem", "mem_used_mb", "mem_total_mb", "power_w", "power_limit_w", "temp_c"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce") if column in frame else float("nan")
    if "throttle_reasons" not in frame:
        frame["throttle_reasons"] = [[] for _ in range(len(frame))]
    return frame.sort_values("ts").reset_index(drop=True)


def gpu_figures(records) -> list[dict] | None:
    """Per GPU: utilisation peak/mean, VRAM peak and headroom, power, temperature, throttle time."""
    frame = gpu_frame(records)
    if frame is None:
        return None
    result = []
    for gpu, g in frame.groupby("gpu", sort=True):
        interval = g["ts"].diff().shift(-1)
        interval = interval.fillna(interval.median() if interval.notna().any() else 0.0)
        is_throttled = g["throttle_reasons"].map(throttled)
        reasons = Counter(r for rs in g.loc[is_throttled, "throttle_reasons"] for r in rs if throttled([r]))
        total = g["mem_total_mb"].max()
        peak_mem = g["mem_used_mb"].max()
        result.append(
            {
                "gpu": _plain(gpu),
                "name": str(g["name"].dropna().iloc[0]) if "name" in g and g["name"].notna().any() else None,
                "source": str(g["source"].dropna().iloc[0]) if "source" in g and g["source"].notna().any() else None,
                "samples": int(len(g)),
                "util_peak_pct": _plain(g["util_gpu"].max()),
                "util_mean_pct": _plain(g["util_gpu"].mean()),
                "vram_peak_mb": _plain(peak_mem),
                "vram_total_mb": _plain(total),
                "vram_headroom_mb": _plain(total - peak_mem),
                "vram_headroom_pct": _plain(100.0 * (total - peak_mem) / total) if total and total > 0 else None,
                "power_mean_w": _plain(g["power_w"].mean()),
                "power_peak_w": _plain(g["power_w"].max()),
                "power_limit_w": _plain(g["power_limit_w"].max()),
                "temp_peak_c": _plain(g["temp_c"].max()),
                "throttle_s": float(interval[is_throttled].sum()),
                "throttle_reasons": dict(reasons),
            }
        )
    return result


def _plain(value):
    """numpy scalars -> JSON numbers; NaN -> None."""
    if value is None or pd.isna(value):
        return None
    return value.item() if hasattr(value, "item") else value


def observations(summary: dict, notes: list[str]) -> list[str]:
    """Plain sentences: SLA breaches, failures, GPU headroom, where throughput flattened, the
    bottleneck. Every number comes from the summary."""
    said = []
    for v in summary["sla"]:
        if v["passed"] is False:
            said.append(
                f"SLA breached: {v['metric']} measured {v['measured']:.4g} {v['unit']}, "
                f"target {v['comparison']} {v['target']:g} {v['unit']}."
            )
    errors = summary["errors"]
    if errors:
        total = sum(e["count"] for e in errors)
        top = errors[0]
        said.append(
            f"{total} render(s) failed after retries; most common: {top['outcome']} / "
            f"{top['error_type']} ({top['count']})."
        )
    queue, execution = summary["queue_wait_ms"], summary["execution_ms"]
    if queue.get("count") and execution.get("count") and queue["mean"] > execution["mean"]:
        said.append(
            f"Requests waited longer in ComfyUI's queue (mean {queue['mean'] / 1000:.3g} s) than they "
            f"executed (mean {execution['mean'] / 1000:.3g} s): the server was saturated at this load."
        )
    said += gpu_observations(summary["gpu"])
    said += ramp_observations(summary["ramp_steps"], summary.get("ramp_knee"))
    nodes = summary["bottleneck_nodes"]
    if nodes:
        n = nodes[0]
        said.append(
            f"Slowest node: {n['class_type']} (node {n['node']}, {n['workflow']}), "
            f"{n['share_pct']:.0f} % of node time, mean {n['mean_ms']:.1f} ms."
        )
    for o in summary.get("outages") or []:
        said.append(
            f"{o['server']} stopped answering for "
            + ("the rest of the run" if o["duration_s"] is None else f"{o['duration_s']:.3g} s")
            + (
                "; it never rendered again."
                if o["recovery_s"] is None
                else f"; first success {o['recovery_s']:.3g} s after the outage began."
            )
        )
    return said + list(notes)


def gpu_observations(gpus) -> list[str]:
    if not gpus:
        return ["No GPU data in this run (no probe samples): GPU utilisation, VRAM and power are not reported."]
    said = []
    for g in gpus:
        peak = g["util_peak_pct"]
        if peak is not None and peak < GPU_IDLE_PCT:
            said.append(f"GPU {g['gpu']} peaked at {peak:.0f} % utilisation: it had headroom; the limit is elsewhere.")
        elif peak is not None and peak >= GPU_SATURATED_PCT:
            said.append(f"GPU {g['gpu']} was saturated (peak {peak:.0f} %, mean {g['util_mean_pct']:.0f} %).")
        if g["vram_headroom_pct"] is not None:
            host = str(g.get("name") or "").lower() == "cpu"  # ComfyUI --cpu: /system_stats reports host RAM
            what = f"host RAM used by device {g['gpu']} (ComfyUI on the CPU)" if host else f"GPU {g['gpu']} VRAM"
            said.append(
                f"{what}: peak {g['vram_peak_mb']:.0f} of {g['vram_total_mb']:.0f} MB "
                f"({g['vram_headroom_pct']:.0f} % headroom)."
            )
        if g["throttle_s"] > 0:
            said.append(
                f"GPU {g['gpu']} was throttled for {g['throttle_s']:.0f} s "
                f"({', '.join(sorted(g['throttle_reasons']))})."
            )
    return said


def ramp_observations(steps: list[dict], knee: dict | None) -> list[str]:
    said = []
    if knee:
        text = knee_text(knee)
        said.append(f"Ramp {text}." if text.startswith("knee") else f"Ramp: {text}.")
    measured = [s for s in steps if s.get("images_per_min")]
    for before, after in zip(measured, measured[1:]):
        gain = 100.0 * (after["images_per_min"] - before["images_per_min"]) / before["images_per_min"]
        if gain < FLATTENED_GAIN_PCT:
            said.append(
                f"Throughput flattened at {before['users']} users: {before['images_per_min']:.1f} → "
                f"{after['images_per_min']:.1f} images/min at {after['users']} ({gain:+.0f} %)."
            )
            break
    return said
