"""The results table of `make bench`: its rows gathered from each measurement, printed as text and
written with the machine and how each figure is taken to bench/RESULTS.md."""

from __future__ import annotations

from pathlib import Path

from bench import capacity, client_comparison, measurement_error, report_build_time
from bench.plan import Plan

HEADER = ["#", "measurement", "ComfyLoad", "reference", "figure", "target", "verdict"]


def table_rows(res: dict, plan: Plan) -> list[list[str]]:
    return [
        *client_comparison.rows(res.get("throughput"), res.get("latency1")),
        *capacity.rows(res.get("capacity"), plan),
        *report_build_time.rows(res.get("report"), plan),
        *measurement_error.rows(res.get("error"), plan),
    ]


def text_table(rows) -> str:
    widths = [max(len(str(r[i])) for r in [HEADER] + rows) for i in range(len(HEADER))]

    def line(r):
        return "  ".join(str(c).ljust(w) for c, w in zip(r, widths))

    return "\n".join([line(HEADER), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


def markdown_table(rows) -> str:
    out = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        out.append("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |")
    return "\n".join(out)


def write_results(path: Path, rows, res: dict, mach: dict, plan: Plan, elapsed: float) -> None:
    lines = [
        "# Benchmark results (`make bench`)",
        "",
        f"Latest run: {mach['date']}{' — `--quick`' if plan.quick else ''}, {elapsed:.0f} s in all. "
        "Written by `bench/run.py`; do not edit by hand.",
        "",
        "## Machine",
        "",
        f"- CPU: {mach['cpu']}, nproc {mach['nproc']}; RAM {mach['ram_gib']:.1f} GiB; load average at the end "
        f"{mach['load'][0]:.2f} / {mach['load'][1]:.2f} / {mach['load'][2]:.2f} (shared machine)",
        f"- {mach['os']}; Python {mach['python']}; Locust {mach['locust']}",
        f"- ComfyUI {mach['comfyui']} (from /system_stats), CPU mode, its own instance on a free 127.0.0.1 port",
        f"- suite commit {mach['commit']}",
        "",
        "## Figures",
        "",
        markdown_table(rows),
        "",
        "## How each figure is taken",
        "",
        *client_comparison.HOW,
        capacity.how(plan),
        report_build_time.HOW,
        measurement_error.how(plan),
        "",
        "## Details",
        "",
        *client_comparison.details(res.get("throughput"), res.get("latency1")),
        *capacity.details(res.get("capacity")),
        *report_build_time.details(res.get("report")),
    ]
    path.write_text("\n".join(lines) + "\n")
