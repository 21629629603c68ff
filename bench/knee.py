"""Time to the knee: the adaptive ramp (probe, predicted knee, steps stopped once decided) against
the linear step ramp, on the same workload whose knee is known by hand (scenarios/ramp_sleep.yaml:
books of Sleep-1-s pages on one ComfyUI, SLA p95 4.95 s -> knee 4 books).

The linear ramp starts at 1 book and adds 1 every --hold seconds (default 75: its judged window,
80 % of the hold, then holds ~60 pages, what the adaptive ramp's p95 interval of width 0.1 asks
for, so both judge a level on about as many pages). Time to the knee: from the run's test.start
event to its ramp.knee event. Each ramp runs once per --repeats, alternating (A B B A ...).

    .venv/bin/python -m bench.knee [--host URL] [--hold 75] [--repeats 1] [--results bench/RESULTS_knee.md]

Starts its own ComfyUI on a free 127.0.0.1 port unless --host is given (stopped by its pid).
Every run is bounded by --run-time. Not a test: nothing here asserts a time."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from comfyload.common.paths import REPO
from comfyload.orchestration.server import LocalComfyUI, free_port

COMMON = (
    "user_class: BookUser\nbook_profile: sleep_pages\nsla: scenarios/sla/sleep.yaml\nramp_max: 12\n"
    "run_time: 15m\nper_prompt_timeout: 60\n"
)


def scenarios(folder: Path, hold: float) -> dict:
    adaptive = folder / "knee_adaptive.yaml"
    adaptive.write_text(COMMON + "shape: adaptive_ramp\nramp_start: 2\nramp_hold: 120\nramp_ci_width: 0.1\n")
    linear = folder / "knee_linear.yaml"
    linear.write_text(COMMON + f"shape: step_ramp\nramp_start: 1\nramp_step: 1\nramp_hold: {hold}\n")
    return {"adaptive": adaptive, "linear": linear}


def run_ramp(host: str, scenario: Path, runs: Path) -> dict:
    before = set(runs.iterdir())
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "comfyload", "run", "--host", host, "--scenario", str(scenario)],
        cwd=str(REPO),
        env={**os.environ, "COMFY_RUNS_DIR": str(runs)},
        capture_output=True,
        text=True,
        timeout=1200,
    )
    wall = time.monotonic() - started
    [run] = [p for p in runs.iterdir() if p not in before]
    records = [json.loads(line) for line in (run / "comfyui_metrics.ndjson").read_text().splitlines()]
    events = [r for r in records if r.get("kind") == "event"]
    start = next(r["ts"] for r in events if r.get("name") == "test.start")
    knees = [r for r in events if r.get("name") == "ramp.knee"]
    steps = [r for r in events if r.get("name") == "ramp.step"]
    prediction = next((r for r in events if r.get("name") == "ramp.prediction"), None)
    if not knees:
        return {"run": str(run), "knee": None, "rc": proc.returncode, "wall_s": wall, "tail": proc.stderr[-800:]}
    knee = knees[-1]
    return {
        "run": run.name,
        "rc": proc.returncode,
        "wall_s": wall,
        "knee": knee["users"],
        "first_breach": knee.get("first_breach"),
        "interval": [knee.get("knee_low", knee["users"]), knee.get("knee_high", knee["users"])],
        "predicted": prediction["knee"] if prediction else None,
        "steps": [(s["users"], s["passed"], s["renders"], round(s["p95_s"] or 0, 2)) for s in steps],
        "time_to_knee_s": knee["ts"] - start,
        "pages": sum(1 for r in records if r.get("kind") == "page"),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", help="an existing ComfyUI with the drill pack (default: start one)")
    parser.add_argument("--hold", type=float, default=75.0, help="linear ramp: seconds per step (default 75)")
    parser.add_argument("--repeats", type=int, default=1, help="pairs of runs, alternating (default 1)")
    parser.add_argument("--results", default=str(REPO / "bench" / "RESULTS_knee.md"))
    args = parser.parse_args(argv)
    server = None
    if not args.host:
        server = LocalComfyUI(port=free_port(), work_dir=Path(tempfile.mkdtemp(prefix="knee-comfy-"))).start()
    host = args.host or server.url
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="knee-bench-") as tmp:
            paths = scenarios(Path(tmp), args.hold)
            runs = Path(tmp) / "runs"
            runs.mkdir()
            order = []
            for i in range(args.repeats):
                order += ["adaptive", "linear"] if i % 2 == 0 else ["linear", "adaptive"]
            for shape in order:
                print(f"[bench] {shape} ramp ...", file=sys.stderr, flush=True)
                row = {"shape": shape, **run_ramp(host, paths[shape], runs)}
                print(f"[bench] {json.dumps(row)}", file=sys.stderr, flush=True)
                rows.append(row)
    finally:
        if server is not None:
            server.stop()
    report = format_results(rows, args.hold)
    print(report)
    Path(args.results).write_text(report + "\n")
    return 0


def format_results(rows: list, hold: float) -> str:
    def mean(shape, key):
        values = [r[key] for r in rows if r["shape"] == shape and r.get("knee") is not None]
        return sum(values) / len(values) if values else None

    lines = [
        f"# Time to the knee: adaptive vs linear step ramp ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        "Workload: books of Sleep-1-s pages (scenarios/ramp_sleep.yaml), one local ComfyUI, SLA p95 4.95 s; "
        f"knee by hand: 4 books. Linear: start 1, +1 per {hold:g} s. Adaptive: probe at 2, CI width 0.1, "
        "confidence 0.9.",
        "",
        "| ramp | knee | interval | predicted | first breach | steps (users, pass, pages, p95 s) | pages | time to knee |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.get("knee") is None:
            lines.append(f"| {r['shape']} | none (rc {r['rc']}) | | | | | | {r['wall_s']:.0f} s wall |")
            continue
        lines.append(
            f"| {r['shape']} | {r['knee']} | {r['interval'][0]}..{r['interval'][1]} | {r['predicted'] or '-'} | "
            f"{r['first_breach']} | {r['steps']} | {r['pages']} | {r['time_to_knee_s']:.0f} s |"
        )
    a, lin = mean("adaptive", "time_to_knee_s"), mean("linear", "time_to_knee_s")
    if a and lin:
        lines += ["", f"Time to the knee, linear / adaptive: **{lin / a:.2f}x** ({lin:.0f} s vs {a:.0f} s)."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
