"""The report's charts (matplotlib, Agg, PNG). Each function draws one chart from figures that
are already computed, or returns None when the run has no data for it: no empty plots.

Which charts a run gets is chart_set.py.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402  (after the backend is chosen)
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter  # noqa: E402

RATE = "rate"  # gid of an axis that plots a rate: it starts at zero
SECONDS = FuncFormatter(lambda v, _pos: f"{v:g}")  # 0.2, 1, 45: never 2e-1

from reports.safe_write import write_bytes  # noqa: E402

SIZE, DPI = (9.0, 3.6), 100


@dataclass
class Chart:
    name: str  # file stem in charts/
    title: str
    caption: str
    path: Path | None  # None: not measured in this run, one line instead of a panel
    panels: list = field(default_factory=list)  # per axis: ylabel, ylim, yscale, gid (what tests read)


def not_measured(name: str, title: str, why: str) -> Chart:
    return Chart(name, title, why, None)


def _figure(rows: int = 1, height: float = SIZE[1]):
    fig = Figure(figsize=(SIZE[0], height * rows if rows > 1 else height), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, 1, sharex=True) if rows > 1 else fig.subplots()
    return fig, axes


def _mark_windows(ax, windows, t0, markers=()):
    """Outages and lost connections shaded red, injected faults orange; other fault events
    (recovered) as dotted lines. `windows`: comfyload.analysis.buckets.shaded_windows."""
    for w in windows:
        colour = "tab:orange" if w["kind"] == "fault" else "tab:red"
        ax.axvspan(w["start"] - t0, w["end"] - t0, color=colour, alpha=0.15, linewidth=0)
    for event in markers:
        ax.axvline(event["ts"] - t0, color="tab:red", alpha=0.35, linestyle=":", linewidth=1)


def _integer_axis(ax):
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0)


def _save(fig, directory: Path, name: str, title: str, caption: str) -> Chart:
    path = directory / f"{name}.png"
    image = io.BytesIO()
    fig.savefig(image, format="png", dpi=DPI)
    write_bytes(path, image.getvalue())  # never through a link (reports/safe_write.py)
    panels = [
        {
            "ylabel": ax.get_ylabel(),
            "ylim": tuple(float(v) for v in ax.get_ylim()),
            "yscale": ax.get_yscale(),
            "gid": ax.get_gid(),
        }
        for ax in fig.axes
    ]
    return Chart(name, title, caption, path, panels)


def latency_over_time(series, sla_p95_s, windows, t0, out, markers=()):
    data = series.dropna(subset=["p95_s"])
    if data.empty:
        return None
    fig, ax = _figure()
    for column, label in (("p50_s", "p50"), ("p95_s", "p95"), ("p99_s", "p99")):  # no completion: a gap, not a join
        ax.plot(series.index, series[column], label=label, marker="." if len(series) < 40 else None)
    low, high = float(data["p50_s"].min()), float(data["p99_s"].max())
    log = low > 0 and (high / low > 10 or sla_p95_s / max(high, 1e-9) > 3)  # sub-second values stay readable
    if log:
        ax.set_yscale("log")
        ax.set_ylim(low / 1.5, max(high, sla_p95_s) * 1.5)
        ax.yaxis.set_major_formatter(SECONDS)
        ax.yaxis.set_minor_formatter(NullFormatter())
    else:
        ax.set_ylim(bottom=0)
    ax.axhline(sla_p95_s, color="tab:red", linestyle="--", label=f"SLA p95 {sla_p95_s:g} s")
    _mark_windows(ax, windows, t0, markers)
    ax.set(xlabel="seconds since start", ylabel="end-to-end latency (s" + (", log scale)" if log else ")"))
    ax.legend(loc="upper left", fontsize="small")
    return _save(
        fig,
        out,
        "latency_over_time",
        "Latency percentiles over time",
        "End-to-end p50/p95/p99 of successful renders per time bucket"
        + (" (log scale, so sub-second values stay readable next to the SLA)" if log else "")
        + "; dashed: the SLA p95; shaded: outages (red), faults (orange).",
    )


def throughput_over_time(series, users, windows, t0, out, target=None, unit="users", markers=(), workers=None):
    if series.empty or series["ok"].sum() == 0:
        return None
    fig, ax = _figure()
    ax.plot(
        series.index,
        series["images_per_min"],
        color="tab:blue",
        label="images/min",
        marker="." if len(series) < 40 else None,
    )
    ax.set(xlabel="seconds since start", ylabel="images / min")
    ax.set_gid(RATE)
    if target is not None:
        ax.axhline(target, color="tab:red", linestyle="--", label=f"SLA >= {target:g} images/min")
    ax.set_ylim(0, max(float(series["images_per_min"].max()), target or 0) * 1.15)
    _mark_windows(ax, windows, t0, markers)
    if users is not None and len(users):
        twin = ax.twinx()
        twin.step(users.index, users.to_numpy(), where="post", color="tab:gray", alpha=0.7, label=unit)
        twin.set_ylabel(unit)
        _integer_axis(twin)
    ax.legend(loc="upper left", fontsize="small")
    by_worker = (
        ("; per worker: " + ", ".join(f"{w} {n}" for w, n in workers.items())) if workers and len(workers) > 1 else ""
    )
    return _save(
        fig,
        out,
        "throughput_over_time",
        "Throughput over time, with " + unit,
        "Completed images per minute per time bucket (a bucket with none is 0); dashed: the SLA; grey: "
        f"Locust {unit}; shaded: outages (red), faults (orange){by_worker}.",
    )


def errors_over_time(series, budget_pct, windows, t0, out, markers=()):
    if series.empty or series["renders"].sum() == 0:
        return None
    fig, ax = _figure()
    ax.bar(
        series.index,
        series["error_pct"].fillna(0),
        width=(series.index[1] - series.index[0]) * 0.9 if len(series) > 1 else 0.9,
        color="tab:orange",
        label="failed renders %",
        align="edge",
    )
    ax.axhline(budget_pct, color="tab:red", linestyle="--", label=f"error budget {budget_pct:g} %")
    _mark_windows(ax, windows, t0, markers)
    ax.set_gid(RATE)
    ax.set(
        xlabel="seconds since start",
        ylabel="failed renders (%)",
        ylim=(0, max(100.0 if series["error_pct"].max() > 0 else budget_pct * 2, 1)),
    )
    ax.legend(loc="upper left", fontsize="small")
    return _save(
        fig,
        out,
        "errors_over_time",
        "Error rate over time",
        "Failed renders (after retries) as a share of the renders finished in each bucket; dashed: the budget.",
    )


def host_figures(gpu_series) -> bool:
    """ComfyUI's /system_stats on a CPU-only server reports host RAM as its device's memory."""
    return "device_type" in gpu_series and gpu_series["device_type"].eq("cpu").all()


def gpu_over_time(gpu_series, windows, t0, out):
    """One panel per measured figure, each labelled by its source: NVML's utilisation, VRAM and
    power; /system_stats' memory only (host RAM on a CPU-only server). [] when none."""
    if gpu_series is None or gpu_series.empty:
        return [not_measured("gpu_over_time", "GPU", "not measured: no GPU samples in this run")]
    sources = ", ".join(sorted(str(s) for s in gpu_series["source"].dropna().unique()))
    host = host_figures(gpu_series)
    panels = [
        (key, label)
        for key, label in (
            ("util_gpu", f"util % ({sources})"),
            ("mem_used_mb", "host RAM (GiB)" if host else f"VRAM GiB ({sources})"),
            ("power_w", f"power W ({sources})"),
        )
        if gpu_series[key].notna().any() and (key != "power_w" or gpu_series[key].max() > 0)
    ]
    missing = [
        name for key, name in (("util_gpu", "utilisation"), ("power_w", "power")) if key not in [k for k, _ in panels]
    ]
    notes = (
        [
            not_measured(
                "gpu_not_measured",
                "GPU " + " and ".join(missing),
                f"not measured: the {sources} source reports no {' or '.join(missing)}"
                + (" (a CPU-only ComfyUI: its memory figure is host RAM, not VRAM)" if host else ""),
            )
        ]
        if missing
        else []
    )
    if not panels:
        return notes
    fig, axes = _figure(rows=len(panels), height=2.2)
    axes = list(axes) if len(panels) > 1 else [axes]
    for ax, (key, label) in zip(axes, panels):
        for gpu, g in gpu_series.groupby("gpu"):
            if key == "util_gpu":
                ax.plot(g["t"], g[key], label=f"GPU {gpu}")
            elif key == "mem_used_mb":
                ax.plot(g["t"], g[key] / 1024.0, label=f"{'host' if host else 'GPU'} {gpu} used")
                if g["mem_total_mb"].notna().any():
                    ax.axhline(g["mem_total_mb"].max() / 1024.0, linestyle="--", color="tab:gray")
            else:
                ax.plot(g["t"], g[key], label=f"GPU {gpu}")
                if g["power_limit_w"].notna().any():
                    ax.axhline(g["power_limit_w"].max(), linestyle="--", color="tab:red")
        _mark_windows(ax, windows, t0)
        ax.set_ylabel(label)
        ax.set_ylim(0, 105 if key == "util_gpu" else None)
        ax.yaxis.set_major_formatter(SECONDS)
        ax.legend(loc="upper left", fontsize="small")
    axes[-1].set_xlabel("seconds since start")
    title = (
        "Host memory (ComfyUI /system_stats: no GPU)"
        if host
        else "GPU "
        + ", ".join({"util_gpu": "utilisation", "mem_used_mb": "VRAM", "power_w": "power"}[k] for k, _ in panels)
    )
    return [
        _save(
            fig,
            out,
            "gpu_over_time",
            title,
            f"Source: {sources}. "
            + ("A CPU-only ComfyUI reports host RAM as its device memory: this is not VRAM. " if host else "")
            + "Dashed: memory total"
            + (" and the power limit." if any(k == "power_w" for k, _ in panels) else "."),
        )
    ] + notes


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
    ax.stackplot(
        data.index,
        data["queue_s"],
        data["exec_s"],
        data["download_s"],
        labels=["queue wait", "execution", "download"],
        alpha=0.8,
    )
    ax.set(xlabel="seconds since start", ylabel="mean seconds per render")
    ax.legend(loc="upper left", fontsize="small")
    return _save(
        fig,
        out,
        "queue_vs_execution",
        "Queue wait vs execution",
        "Where a successful render's time went, mean per time bucket (server timestamps).",
    )


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
    return _save(
        fig,
        out,
        "node_time",
        "Time per node (bottleneck nodes)",
        "Share of all node execution time, slowest first; label: mean ms per run.",
    )


def ramp_chart(steps, knee, sla_p95_s, unit, out, sla_images_per_min=None):
    steps = [s for s in steps if s.get("users") is not None]
    if len(steps) < 2:
        return None
    fig, (lat, thr) = _figure(rows=2, height=2.6)
    users = [s["users"] for s in steps]
    lat.plot(users, [s.get("p95_s") for s in steps], marker="o", color="tab:blue", label="p95 (s)")
    lat.axhline(sla_p95_s, color="tab:red", linestyle="--", label=f"SLA p95 {sla_p95_s:g} s")
    p95s = [s["p95_s"] for s in steps if s.get("p95_s")]
    if p95s and sla_p95_s / max(p95s) > 3:  # far below the SLA: a log scale keeps the steps apart
        lat.set_yscale("log")
        lat.yaxis.set_major_formatter(SECONDS)
        lat.yaxis.set_minor_formatter(NullFormatter())
    else:
        lat.set_ylim(bottom=0)
    lat.set(ylabel="p95 latency (s)")
    thr.plot(users, [s.get("images_per_min") for s in steps], marker="s", color="tab:green", label="images/min")
    if sla_images_per_min is not None:
        thr.axhline(
            sla_images_per_min, color="tab:red", linestyle=":", label=f"SLA >= {sla_images_per_min:g} images/min"
        )
    thr.set_ylim(0, max([s.get("images_per_min") or 0 for s in steps] + [sla_images_per_min or 0]) * 1.15 or 1)
    thr.set_gid(RATE)
    thr.set(xlabel=unit, ylabel="images / min")
    thr.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (lat, thr):
        if knee and knee.get("users"):
            ax.axvline(
                knee["users"],
                color="black",
                linestyle=":",
                label=(
                    f"knee: {knee['users']}"
                    if knee.get("first_breach") is not None
                    else f"no knee up to {knee['users']}"
                )
                if ax is lat
                else None,
            )
        ax.legend(loc="upper left", fontsize="small")
    return _save(
        fig,
        out,
        "ramp",
        "Ramp: p95 and throughput against load",
        "Each step's own verdict window: top, p95 against the SLA p95 (dashed); bottom, images/min from zero "
        "against the SLA throughput (dotted); vertical dotted: the knee (most load within the SLA; "
        "the highest step when none failed).",
    )
