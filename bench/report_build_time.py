"""Measurement 4: the wall time of building the report of a generated 24-hour soak
(bench/report_build.py, run as is), against a budget of 15 s."""

from __future__ import annotations

import re
import subprocess
import sys

from bench.cells import fmt, verdict
from bench.plan import Plan, log
from comfyload.common.paths import REPO

TARGETS = {"report_s": 15.0}


def run(plan: Plan) -> dict:
    script = REPO / "bench" / "report_build.py"
    if not script.exists():
        return {"missing": True}
    log("report build of a generated soak: " + ("1/10 scale (--quick)" if plan.quick else "24 h, 1,000,000 prompts"))
    proc = subprocess.run(
        [sys.executable, "-m", "bench.report_build", *plan.report_args],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=900,
    )
    match = re.search(r"report build: ([\d.]+) s", proc.stdout)
    generated = re.search(r"generated (.*) in ([\d.]+) s", proc.stdout)
    return {
        "missing": False,
        "seconds": float(match.group(1)) if match else None,
        "rc": proc.returncode,
        "generated": generated.group(1) if generated else None,
        "tail": (proc.stdout + proc.stderr).strip().splitlines()[-3:],
    }


def rows(rb: dict | None, plan: Plan) -> list[list[str]]:
    if rb is None:
        return []
    if rb.get("missing"):
        return [
            [
                "4",
                "report build, 24-hour soak (s)",
                "NOT RUN",
                "-",
                "bench/report_build.py is not there yet",
                f"<= {TARGETS['report_s']:g} s",
                "n/a",
            ]
        ]
    scale = "1/10 soak (--quick)" if plan.quick else "86,400 rows, 1,000,000 prompts"
    ok = None if plan.quick or rb["seconds"] is None else rb["seconds"] <= TARGETS["report_s"]
    return [
        [
            "4",
            f"report build, {scale} (s)",
            fmt(rb["seconds"], ".1f"),
            "-",
            f"{rb['seconds'] / TARGETS['report_s']:.2f} of budget" if rb["seconds"] else "failed",
            f"<= {TARGETS['report_s']:g} s",
            verdict(ok),
        ]
    ]


HOW = (
    "- **4**: `bench/report_build.py` (reports/, another engineer's) run as is; its own figure: the wall time "
    "of `reports.build.build` on a generated soak (the generation is not timed), with the build's user+sys CPU "
    "time and the load average beside it (on 2 cores shared by several engineers the wall time follows the "
    "load; the CPU time does not)."
)


def details(rb: dict | None) -> list[str]:
    return [f"- report_build.py: {' / '.join(rb['tail'])}"] if rb and not rb.get("missing") else []
