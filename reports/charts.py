"""The report's charts (matplotlib, Agg, PNG). Each function draws one chart from figures that
are already computed, or returns None when the run has no data for it: no empty plots."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402  (after the backend is chosen)

from reports.safe_write import write_bytes  # noqa: E402

SIZE, DPI = (9.0, 3.6), 100


@dataclass
class Chart:
    name: str        # file stem in charts/
    title: str
    caption: str
    path: Path


def _figure(rows: int = 1, height: float = SIZE[1]):
    fig = Figure(figsize=(SIZE[0], height * rows if rows > 1 else height), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, 1, sharex=True) if rows > 1 else fig.subplots()
    return fig, axes


def fault_windows(faults) -> list[tuple]:
    """[(start_ts, end_ts, fault)]: each fault.start paired with the next fault.end of the same
    fault (an unmatched start lasts to the end of the chart)."""
    ends = [e for e in faults if e.get("name") == "fault.end"]
    windows = []
    for start in (e for e in faults if e.get("name") == "fault.start"):
        end = next((e["ts"] for e in ends if e.get("fault") == start.get("fault") and e["ts"] >= start["ts"]), None)
        windows.append((start["ts"], end, start.get("fault")))
    return windows


def _mark_faults(ax, faults, t0):
    """Fault windows shaded; other fault events (recovered, verdict) as dotted lines."""
    for start, end, _fault in fault_windows(faults):
        if end is None:
            ax.axvline(start - t0, color="tab:red", alpha=0.5, linewidth=1)
        else:
            ax.axvspan(start - t0, end - t0, color="tab:red", alpha=0.15, linewidth=0)
    for event in faults:
        if event.get("name") not in ("fault.start", "fault.end"):
            ax.axvline(event["ts"] - t0, color="tab:red", alpha=0.35, linestyle=":", linewidth=1)


def _save(fig, directory: Path, name: str, title: str, caption: str) -> Chart:
    path = directory / f"{name}.png"
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=DPI)
    write_bytes(path, image.getvalue())  # never through a link (reports/safe_write.py)
    return Chart(name, title, caption, path)


def latency_over_time(series, sla_p95_s, faults, t0, out):
    data = series.dropna(subset=["p95_s"])
    if data.empty:
        return None
    fig, ax = _figure()
    for column, label in (("p50_s", "p50"), ("p95_s", "p95"), ("p99_s", "p99")):
        ax.plot(data.index, data[column], label=label, marker="." if len(data) < 40 else None)
    ax.axhline(sla_p95_s, color="tab:red", linestyle="--", label=f"SLA p95 {sla_p95_s:g} s")
    _mark_faults(ax, faults, t0)
    ax.set(xlabel="seconds since start", ylabel="end-to-end latency (s)")
    ax.legend(loc="upper left", fontsize="small")
    return _save(fig, out, "latency_over_time", "Latency percentiles over time",
                 "End-to-end p50/p95/p99 of successful renders per time bucket; dashed: the SLA p95.")


def throughput_over_time(series, users, faults, t0, out):
    if series.empty or series["ok"].sum() == 0:
        return None
    fig, ax = _figure()
    ax.plot(series.index, series["images_per_min"], color="tab:blue", label="images/min",
            marker="." if len(series) < 40 else None)
    ax.set(xlabel="seconds since start", ylabel="images / min")
    _mark_faults(ax, faults, t0)
    if users is not None and len(users):
        twin = ax.twinx()
        twin.step(users.index, users.to_numpy(), where="post", color="tab:gray", alpha=0.7, label="users")
        twin.set_ylabel("users")
        twin.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize="small")
    return _save(fig, out, "throughput_over_time", "Throughput over time, with users",
                 "Completed images per minute per time bucket; grey: Locust users.")


def errors_over_time(series, budget_pct, faults, t0, out):
    if series.empty:
        return None
    fig, ax = _figure()
    ax.bar(series.index, series["error_pct"], width=(series.index[1] - series.index[0]) * 0.9 if len(series) > 1 else 0.9,
           color="tab:orange", label="failed renders %", align="edge")
    ax.axhline(budget_pct, color="tab:red", linestyle="--", label=f"error budget {budget_pct:g} %")
    _mark_faults(ax, faults, t0)
    ax.set(xlabel="seconds since start", ylabel="failed renders (%)", ylim=(0, max(100.0 if series["error_pct"].max() > 0 else budget_pct * 2, 1)))
    ax.legend(loc="upper left", fontsize="small")
    return _save(fig, out, "errors_over_time", "Error rate over time",
                 "Failed renders (after retries) as a share of the renders finished in each bucket; dashed: the budget.")


def gpu_over_time(gpu_series, faults, t0, out):
    if gpu_series is None or gpu_series.empty:
        return None
    fig, (util, vram, power) = _figure(rows=3, height=2.2)
    for gpu, g in gpu_series.groupby("gpu"):
        util.plot(g["t"], g["util_gpu"], label=f"GPU {gpu}")
        vram.plot(g["t"], g["mem_used_mb"] / 1024.0, label=f"GPU {gpu} used")
        if g["mem_total_mb"].notna().any():
            vram.axhline(g["mem_total_mb"].max() / 1024.0, linestyle="--", color="tab:gray")
        power.plot(g["t"], g["power_w"], label=f"GPU {gpu}")
        if g["power_limit_w"].notna().any():
            power.axhline(g["power_limit_w"].max(), linestyle="--", color="tab:red")
    for ax in (util, vram, power):
        _mark_faults(ax, faults, t0)
    util.set(ylabel="util %", ylim=(0, 105))
    vram.set(ylabel="VRAM GiB")
    power.set(ylabel="power W", xlabel="seconds since start")
    util.legend(loc="upper left", fontsize="small")
    return _save(fig, out, "gpu_over_time", "GPU utilisation, VRAM and power",
                 "Per GPU on the run's time axis; dashed: VRAM total and the power limit.")


def latency_cdf(points, sla_p95_s, out):
    ordered, fraction = points
    if len(ordered) == 0:
        return None
    fig, ax = _figure()
    ax.plot(ordered, fraction * 100.0, color="tab:blue", drawstyle="steps-post")
    ax.axvline(sla_p95_s, color="tab:red", linestyle="--", label=f"SLA p95 {sla_p95_s:g} s")
    ax.axhline(95, color="tab:gray", linestyle=":", label="95 %")
    ax.set(xlabel="end-to-end latency (s)", ylabel="% of successful renders", ylim=(0, 101))
    ax.legend(loc="lower right", fontsize="small")
    return _save(fig, out, "latency_cdf", "Latency CDF", "Share of successful renders finished within a given time.")


def queue_vs_execution(series, out):
    data = series[["queue_s", "exec_s", "download_s"]].fillna(0.0)
    if data.empty or not data.to_numpy().any():
        return None
    fig, ax = _figure()
    ax.stackplot(data.index, data["queue_s"], data["exec_s"], data["download_s"],
                 labels=["queue wait", "execution", "download"], alpha=0.8)
    ax.set(xlabel="seconds since start", ylabel="mean seconds per render")
    ax.legend(loc="upper left", fontsize="small")
    return _save(fig, out, "queue_vs_execution", "Queue wait vs execution",
                 "Where a successful render's time went, mean per time bucket (server timestamps).")


def node_bars(rows, out):
    if not rows:
        return None
    rows = rows[:12][::-1]
    many = len({r["workflow"] for r in rows}) > 1
    labels = [f"{r['workflow'] + ': ' if many else ''}{r['class_type']} #{r['node']}" for r in rows]
    fig = Figure(figsize=(SIZE[0], 0.35 * len(rows) + 1.2), dpi=DPI, layout="constrained")
    ax = fig.subplots()
    ax.barh(labels, [r["share_pct"] for r in rows], color="tab:purple")
    for y, r in enumerate(rows):
        ax.text(r["share_pct"], y, f" {r['mean_ms']:.1f} ms", va="center", fontsize="small")
    ax.set(xlabel="% of node time (successful prompts)", xlim=(0, 115))
    return _save(fig, out, "node_time", "Time per node (bottleneck nodes)",
                 "Share of all node execution time, slowest first; label: mean ms per run.")


def ramp_chart(steps, knee, sla_p95_s, unit, out):
    steps = [s for s in steps if s.get("users") is not None]
    if len(steps) < 2:
        return None
    fig, ax = _figure()
    users = [s["users"] for s in steps]
    ax.plot(users, [s.get("p95_s") for s in steps], marker="o", color="tab:blue", label="p95 (s)")
    ax.axhline(sla_p95_s, color="tab:red", linestyle="--", label=f"SLA p95 {sla_p95_s:g} s")
    ax.set(xlabel=unit, ylabel="p95 latency (s)")
    twin = ax.twinx()
    twin.plot(users, [s.get("images_per_min") for s in steps], marker="s", color="tab:green", label="images/min")
    twin.set_ylabel("images / min")
    if knee and knee.get("users"):
        ax.axvline(knee["users"], color="black", linestyle=":", label=f"knee: {knee['users']}")
    ax.legend(loc="upper left", fontsize="small")
    twin.legend(loc="upper right", fontsize="small")
    return _save(fig, out, "ramp", "Ramp: p95 and throughput against load",
                 "Each step's own verdict window; dotted: the knee (most load within the SLA).")
