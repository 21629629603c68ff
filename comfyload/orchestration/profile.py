"""`comfyload profile WF...`: each workflow alone, one request at a time, N times after a
warm-up, with comfyload.protocol.client (no Locust). Reports runtime, peak VRAM (from the probe's `gpu`
records in the folder, when a probe wrote there) and the bottleneck nodes per workflow."""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

from comfyload.analysis.sla import SlaTargets
from comfyload.analysis.summary import summarise
from comfyload.common.cli_exit import run_cli
from comfyload.common.errors import UserError
from comfyload.common.recorder import RUNS_ROOT, RunRecorder, new_run_dir, read_records
from comfyload.orchestration.server import comfy_target
from comfyload.protocol import server_answers
from comfyload.protocol.client import ComfyClient
from comfyload.protocol.workload import load_workflow, validate_against_server
from reports.figures import gpu_figures
from reports.html_page import document, esc, table
from reports.nodes import NodeTimes

TOP_NODES = 5


def profile_workflow(
    client: ComfyClient, workflow, runs: int, warmup: int, timeout: float, rng: random.Random, recorder: RunRecorder
) -> tuple[float, float]:
    """Warm-up runs (recorded with `warmup`, not measured), then `runs` measured ones back to back.
    Returns the measured window (start, end) in epoch seconds."""
    for _ in range(warmup):
        result = client.run_prompt(workflow.parameterise(rng), workflow.name, timeout, extra={"warmup": True})
        recorder.write(result.to_record())
    start = time.time()
    recorder.event("profile.start", workflow=workflow.name)
    for _ in range(runs):
        recorder.write(client.run_prompt(workflow.parameterise(rng), workflow.name, timeout).to_record())
    end = time.time()
    recorder.event("profile.end", workflow=workflow.name, start_ts=start)
    return start, end


def workflow_profile(name: str, window: tuple[float, float], records: list[dict]) -> dict:
    measured = [r for r in records if r.get("kind") == "prompt" and r.get("workflow") == name and not r.get("warmup")]
    figures = summarise(measured, SlaTargets())
    nodes = NodeTimes()
    for r in measured:
        nodes.add(r)
    gpu = gpu_figures([r for r in records if r.get("kind") == "gpu" and window[0] <= r.get("ts", 0) <= window[1]])
    return {
        "workflow": name,
        "runs": len(measured),
        "ok": figures["prompts_ok"],
        "outcomes": figures["outcomes"],
        "e2e_ms": figures["e2e_ms"],
        "execution_ms": figures["execution_ms"],
        "queue_wait_ms": figures["queue_wait_ms"],
        "peak_vram_mb": max((g["vram_peak_mb"] for g in gpu or [] if g["vram_peak_mb"] is not None), default=None),
        "gpu": gpu,
        "bottleneck_nodes": nodes.table(name)[:TOP_NODES],
    }


def _s(stats: dict, key: str):
    value = stats.get(key)
    return None if value is None else value / 1000.0


def format_profile(profiles: list[dict]) -> str:
    lines = []
    for p in profiles:
        e2e, ex = p["e2e_ms"], p["execution_ms"]
        vram = "absent (no GPU data: no probe samples)" if p["peak_vram_mb"] is None else f"{p['peak_vram_mb']:.0f} MB"
        lines.append(
            f"{p['workflow']}: {p['ok']}/{p['runs']} ok; runtime mean {_fmt(_s(e2e, 'mean'))} s, "
            f"p50 {_fmt(_s(e2e, 'p50'))} s, p95 {_fmt(_s(e2e, 'p95'))} s, max {_fmt(_s(e2e, 'max'))} s; "
            f"execution mean {_fmt(_s(ex, 'mean'))} s; peak VRAM {vram}"
        )
        for n in p["bottleneck_nodes"]:
            lines.append(f"    {n['share_pct']:5.1f} %  {n['mean_ms']:9.1f} ms  {n['class_type']} (node {n['node']})")
    return "\n".join(lines)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def render_profile(profiles: list[dict], host: str) -> str:
    summary = table(
        ("workflow", "ok / runs", "runtime mean s", "p50 s", "p95 s", "max s", "execution mean s", "peak VRAM MB"),
        [
            (
                p["workflow"],
                f"{p['ok']} / {p['runs']}",
                _s(p["e2e_ms"], "mean"),
                _s(p["e2e_ms"], "p50"),
                _s(p["e2e_ms"], "p95"),
                _s(p["e2e_ms"], "max"),
                _s(p["execution_ms"], "mean"),
                "absent (no GPU data)" if p["peak_vram_mb"] is None else p["peak_vram_mb"],
            )
            for p in profiles
        ],
    )
    nodes = "".join(
        f"<h3>{esc(p['workflow'])}</h3>"
        + table(
            ("node", "class", "mean ms", "share %"),
            [(n["node"], n["class_type"], n["mean_ms"], n["share_pct"]) for n in p["bottleneck_nodes"]],
        )
        for p in profiles
    )
    body = (
        f"<h1>ComfyLoad profile</h1><p>server {esc(host)}; each workflow alone, one request at a time.</p>"
        + summary
        + "<h2>Bottleneck nodes</h2>"
        + nodes
    )
    return document("ComfyLoad profile", body)


def run_profile(
    names: list[str], host: str, runs: int, warmup: int, timeout: float, seed: int = 0, out_dir=None
) -> list[dict]:
    if runs < 1 or warmup < 0:
        raise UserError("--runs must be >= 1 and --warmup >= 0")
    workflows = [load_workflow(n) for n in names]
    client = ComfyClient(host)
    try:
        server_answers.system_stats(client)
        object_info = server_answers.object_info(client)
        for wf in workflows:
            validate_against_server(wf.graph, object_info, wf.name)
        client.start()
        run_dir = Path(out_dir) if out_dir else new_run_dir("profile", RUNS_ROOT)
        recorder = RunRecorder(run_dir)
        rng = random.Random(seed or None)
        windows = {wf.name: profile_workflow(client, wf, runs, warmup, timeout, rng, recorder) for wf in workflows}
        recorder.close()
    finally:
        client.close()
    records = read_records(run_dir)
    profiles = [workflow_profile(name, window, records) for name, window in windows.items()]
    (run_dir / "profile.json").write_text(json.dumps({"host": host, "profiles": profiles}, indent=2, default=str))
    (run_dir / "profile.html").write_text(render_profile(profiles, host), encoding="utf-8")
    print(format_profile(profiles))
    print(f"profile: {run_dir / 'profile.html'}")
    return profiles


def build_parser():
    p = argparse.ArgumentParser(
        prog="comfyload profile", description="run each workflow alone, one request at a time, N times"
    )
    p.add_argument("workflows", nargs="+", help="workflow names (workflows/<name>.json) or paths")
    p.add_argument(
        "--host",
        default=os.environ.get("COMFY_HOST") or None,
        help="ComfyUI server URL (env COMFY_HOST); default: start the local ComfyUI, as `comfyload run` does",
    )
    p.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("COMFY_PORT") or 8188),
        help="port for the local ComfyUI (default 8188, env COMFY_PORT)",
    )
    p.add_argument("--runs", "-n", type=int, default=5, help="measured runs per workflow (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="runs discarded first, per workflow (default 1)")
    p.add_argument("--timeout", type=float, default=300.0, help="per-prompt timeout in seconds (default 300)")
    p.add_argument("--seed", type=int, default=0, help="parameter seed (default 0: random)")
    p.add_argument(
        "--out",
        default=None,
        help="folder for the records and profile.html (default runs/<id>-profile; "
        "point the GPU probe at it for peak VRAM)",
    )
    return p


def main(argv=None) -> int:
    """`comfyload profile`: starts the local ComfyUI when no host is given, as `run` does."""
    args = build_parser().parse_args(argv)
    return run_cli(lambda: profile_on_target(args))


def profile_on_target(args) -> int:
    with comfy_target(args) as (host, _server):
        run_profile(args.workflows, host, args.runs, args.warmup, args.timeout, args.seed, args.out)
    return 0
