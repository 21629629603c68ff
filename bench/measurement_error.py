"""Measurement 5: the measurement error of ComfyLoad (websocket, one user) against a hand-written
/history poller (every 2 s), both on a prompt of known length (Sleep 1.3 s): |e2e - 1300 ms|, and
|e2e - the server's own span| (create_time -> execution_success)."""

from __future__ import annotations

from pathlib import Path

import requests

from bench.cells import fmt
from bench.locust_runs import run_comfyload
from bench.plan import KNOWN_MS, SLEEP_KNOWN, WORKFLOWS, Plan, log
from bench.raw_client import poll_history_prompt, server_span
from bench.stats import abs_errors_ms


def run(url: str, plan: Plan, work: Path) -> dict:
    n = plan.known_prompts
    log(f"poller at {plan.poll_interval_s:g} s: {n} x Sleep {KNOWN_MS / 1000:g} s")
    session = requests.Session()
    polled = [poll_history_prompt(session, url, SLEEP_KNOWN, plan.poll_interval_s, timeout=30) for _ in range(n)]
    session.close()
    polled = [p for p in polled if p["done"] is not None]
    poll_ms = [(p["done"] - p["sent"]) * 1000.0 for p in polled]
    poll_span = [server_span(p["entry"]) for p in polled]
    log(f"ComfyLoad (ws): {n} x Sleep {KNOWN_MS / 1000:g} s")
    records = [
        r for r in run_comfyload(url, WORKFLOWS / "sleep1p3.json", 1, n, work, "known") if r.get("outcome") == "success"
    ]
    ws_ms = [r["e2e_ms"] for r in records]
    # against the server's own span (create_time -> execution_success): the error of the measurement
    # itself, without the server's own stalls (e.g. ComfyUI's gc.collect() every 10 s between prompts)
    poll_vs_server = abs_errors_ms(
        [m - (s["execution_end"] - s["create_time"]) for m, s in zip(poll_ms, poll_span)], 0.0
    )
    ws_vs_server = abs_errors_ms(
        [r["e2e_ms"] - (r["execution_end"] - r["create_time"]) for r in records if r.get("create_time") is not None],
        0.0,
    )
    return {
        "poll": abs_errors_ms(poll_ms, KNOWN_MS),
        "comfyload": abs_errors_ms(ws_ms, KNOWN_MS),
        "poll_server": poll_vs_server,
        "comfyload_server": ws_vs_server,
    }


def rows(m: dict | None, plan: Plan) -> list[list[str]]:
    if not m:
        return []
    out = []
    for name, key in (
        (f"/history poller every {plan.poll_interval_s:g} s", "poll"),
        ("ComfyLoad (websocket)", "comfyload"),
    ):
        e, v = m[key], m[key + "_server"]
        out.append(
            [
                "5",
                f"error, Sleep {KNOWN_MS / 1000:g} s x{e['n']}: {name} (ms)",
                f"{fmt(e['mean'], '.1f')} mean, {fmt(e['median'], '.1f')} median, {fmt(e['max'], '.1f')} max",
                f"vs server span: {fmt(v['mean'], '.1f')} mean, {fmt(v['median'], '.1f')} median, {fmt(v['max'], '.1f')} max",
                f"|e2e - {KNOWN_MS:.0f}|",
                "-",
                "info",
            ]
        )
    return out


def how(plan: Plan) -> str:
    return (
        f"- **5**: Sleep {KNOWN_MS / 1000:g} s, one at a time: a hand-written `/history` poller (GET every "
        f"{plan.poll_interval_s:g} s) vs ComfyLoad in ws mode (1 user); error = |e2e - {KNOWN_MS:.0f} ms| (ComfyLoad column), "
        "and |e2e - the server's own span (create_time -> execution_success)| (reference column). The poller's error "
        "is its interval: up to 2 s late. ComfyLoad's typical (median) error is the HTTP round trip and the server's "
        "per-prompt overhead, a few ms; its max is (most likely) real server latency, not a measurement error: ComfyUI runs "
        "gc.collect() between prompts every 10 s (hundreds of ms on this loaded CPU, holding the GIL), and a POST "
        "that arrives meanwhile waits before the server stamps its create_time, so the stall counts on the client "
        "side of that split too."
    )
