"""Measurement 3: what 2,000 waiting users cost. One Locust process holds them, each waiting on a
queued Sleep prompt: its RSS and CPU while they wait (against fixed budgets), and the server's own
prompts/s and CPU per prompt on a fixed workload with those waiters against without them
(alternating without, with, without, ...)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import psutil
import requests

from bench.cells import fmt, verdict
from bench.locust_runs import locust_command, locust_env
from bench.plan import NO_SOCKET, SLEEP0, WAIT_WORKFLOW, Plan, log
from bench.raw_client import server_span
from bench.server_queries import clear_server, history_entries, queued_count
from bench.stats import judge, median, relative_spread, slowdown_pct
from comfyload.common.paths import REPO
from comfyload.common.processes import stop_process

TARGETS = {"rss_mib": 1024.0, "cpu_pct": 20.0, "slowdown_pct": 5.0}


def server_rate(url: str, jobs: int, server_pid: int) -> tuple[float, float]:
    """The server's own prompts/s on a fixed workload, from its own timestamps. A blocker (Sleep
    600 s, honours /interrupt) is put at the front of the queue; once it runs, `jobs` Sleep 0
    prompts are queued right behind it (explicit queue numbers: ahead of anything else queued);
    then the blocker is interrupted, so all of them wait before the first one starts.
    rate = jobs / (last execution_success - first execution_start); also the server process's CPU
    ms per prompt from the release to the last one (includes ComfyUI's periodic gc.collect(), less
    sensitive to the neighbours than wall time). The prompts name a client id
    without a socket, so their progress messages go nowhere in both conditions (without one, ComfyUI
    would broadcast them to the waiters' socket)."""
    session = requests.Session()
    blocker = {"1": {"class_type": "Sleep", "inputs": {"seconds": 600.0}}}
    try:
        blocker_id = session.post(
            url + "/prompt", json={"prompt": blocker, "number": -2e9, "client_id": NO_SOCKET}, timeout=30
        ).json()["prompt_id"]
        deadline = time.monotonic() + 30  # a waiter's Sleep 5 s may still run before it
        while not any(
            item[1] == blocker_id for item in session.get(url + "/queue", timeout=30).json()["queue_running"]
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("the blocker prompt did not start within 30 s")
            time.sleep(0.1)
        ids = []
        for i in range(jobs):
            answer = session.post(
                url + "/prompt", json={"prompt": SLEEP0, "number": -1e9 + i, "client_id": NO_SOCKET}, timeout=30
            )
            answer.raise_for_status()
            ids.append(answer.json()["prompt_id"])
        server = psutil.Process(server_pid)
        cpu0 = server.cpu_times()
        session.post(url + "/interrupt", json={}, timeout=30)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and ids[-1] not in session.get(f"{url}/history/{ids[-1]}", timeout=30).json():
            time.sleep(0.25)
        cpu1 = server.cpu_times()
    finally:
        session.close()
    cpu_ms = ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) * 1000.0 / jobs
    spans = [server_span(e) for e in history_entries(url, ids).values()]
    starts = [s["execution_start"] for s in spans if s["execution_start"]]
    ends = [s["execution_end"] for s in spans if s["execution_end"]]
    if len(ends) < jobs:
        raise RuntimeError(f"the fixed workload did not finish: {len(ends)}/{jobs} prompts")
    return jobs / ((max(ends) - min(starts)) / 1000.0), cpu_ms


def waiters_phase(url: str, plan: Plan, work: Path, server_pid: int, measure_idle: bool) -> dict:
    """Starts one Locust process with plan.waiters users, each waiting on a queued Sleep 5 s
    prompt; optionally takes its RSS and CPU while they wait; times the server's fixed workload
    with them; then clears the queue and stops Locust."""
    bound_s = plan.idle_window_s + 180
    cmd = locust_command(
        url,
        WAIT_WORKFLOW,
        plan.waiters,
        plan.waiters,
        work / f"capacity-{time.monotonic_ns()}",
        bound_s,
        timeout_s=bound_s + 60,
    )
    log(f"{plan.waiters} users in one Locust process, each waiting on a queued Sleep prompt")
    out = open(work / "capacity.log", "ab")
    proc = subprocess.Popen(cmd, cwd=str(REPO), env=locust_env(work), stdout=out, stderr=subprocess.STDOUT)
    result = {}
    try:
        process = psutil.Process(proc.pid)
        started = time.monotonic()
        queued = 0
        while time.monotonic() - started < 90 and proc.poll() is None:
            queued = queued_count(url)
            if queued >= plan.waiters - 5:
                break
            time.sleep(0.5)
        result["queued"], result["fill_s"] = queued, time.monotonic() - started
        log(f"  {queued} prompts queued after {result['fill_s']:.1f} s")
        time.sleep(2)  # let the submission burst settle
        if measure_idle:
            cpu0, wall0, rss = process.cpu_times(), time.monotonic(), 0
            while time.monotonic() - wall0 < plan.idle_window_s:
                rss = max(rss, process.memory_info().rss)
                time.sleep(0.5)
            cpu1, wall1 = process.cpu_times(), time.monotonic()
            result["rss_mib"] = rss / 2**20
            result["cpu_pct"] = ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / (wall1 - wall0) * 100.0
            log(
                f"  over {plan.idle_window_s} s: RSS {result['rss_mib']:.0f} MiB, CPU {result['cpu_pct']:.1f} % of a core"
            )
        result["rate"], result["cpu_ms"] = server_rate(url, plan.server_jobs, server_pid)
        result["still_queued"] = queued_count(url)
        log(
            f"  server with the waiters: {result['rate']:.0f} prompts/s, {result['cpu_ms']:.2f} CPU ms/prompt "
            f"({result['still_queued']} still queued)"
        )
    finally:
        clear_server(url)
        stop_process(proc, grace=30, first=signal.SIGINT)
        out.close()
        clear_server(url)
    return result


def run(url: str, plan: Plan, work: Path, server_pid: int) -> dict:
    """Without, with, without, (with, without): the server's fixed workload alternates between
    no waiters and a fresh Locust process holding them."""

    def alone():
        rate, cpu_ms = server_rate(url, plan.server_jobs, server_pid)
        log(f"  server alone: {rate:.0f} prompts/s, {cpu_ms:.2f} CPU ms/prompt")
        return rate, cpu_ms

    log(f"server's fixed workload: {plan.server_jobs} Sleep 0 prompts")
    without, with_waiters, result = [alone()], [], {}
    for i in range(plan.slowdown_repeats):
        phase = waiters_phase(url, plan, work, server_pid, measure_idle=(i == 0))
        if i == 0:
            result.update({k: phase[k] for k in ("queued", "fill_s", "rss_mib", "cpu_pct")})
        with_waiters.append((phase["rate"], phase["cpu_ms"]))
        without.append(alone())
    result["without"] = median([r for r, _ in without])
    result["with"] = median([r for r, _ in with_waiters])
    result["without_all"], result["with_all"] = [r for r, _ in without], [r for r, _ in with_waiters]
    result["cpu_ms_without"] = median([c for _, c in without])
    result["cpu_ms_with"] = median([c for _, c in with_waiters])
    result["slowdown_pct"] = slowdown_pct(result["without"], result["with"])
    result["noise_pct"] = relative_spread(result["without_all"]) * 100.0
    return result


def rows(cap: dict | None, plan: Plan) -> list[list[str]]:
    if not cap:
        return []

    def within_budget(measurement: str, key: str, spec: str, unit: str) -> list[str]:
        figure, budget = cap[key], TARGETS[key]
        return [
            "3",
            measurement,
            fmt(figure, spec),
            "-",
            fmt(figure, spec, unit),
            f"< {budget:g}{unit}",
            verdict(figure < budget),
        ]

    def with_vs_without(measurement: str, key: str, spec: str, change: str, target: str, result: str) -> list[str]:
        """The server's figure on the same workload with the waiters and without them."""
        with_, without = cap[f"{key}with"], cap[f"{key}without"]
        return ["3", measurement, fmt(with_, spec), fmt(without, spec) + " (no waiters)", change, target, result]

    slowdown, target = cap["slowdown_pct"], TARGETS["slowdown_pct"]
    return [
        within_budget(f"{plan.waiters} waiting users, one Locust process: RSS (MiB)", "rss_mib", ".0f", " MiB"),
        within_budget(f"{plan.waiters} waiting users: CPU while waiting (% of a core)", "cpu_pct", ".1f", " %"),
        with_vs_without(
            f"server prompts/s, fixed workload, with {plan.waiters} waiters vs without",
            "",
            ".0f",
            f"slowdown {slowdown:+.1f} % (noise ±{cap['noise_pct']:.0f} %)",
            "< 5 %",
            judge(slowdown < target, slowdown - target, cap["noise_pct"]),
        ),
        with_vs_without(
            f"server CPU ms per prompt, same workload, with {plan.waiters} waiters vs without",
            "cpu_ms_",
            ".2f",
            f"{(cap['cpu_ms_with'] / cap['cpu_ms_without'] - 1) * 100:+.1f} % CPU",
            "-",
            "info",
        ),
    ]


def how(plan: Plan) -> str:
    return (
        f"- **3**: {plan.waiters} PromptUsers in one Locust process, each with one Sleep 5 s prompt (all but one "
        f"queued on the server); RSS (max) and CPU (user+sys) of that process over {plan.idle_window_s} s once "
        "they are queued. Server slowdown: a fixed workload "
        f"({plan.server_jobs} Sleep 0 prompts queued behind a blocker at the front of the queue, released by "
        "/interrupt once they are all queued) timed by the "
        "server's own timestamps, alternating without / with the waiters (a fresh Locust process each time; "
        "medians); after each, the queue is cleared (POST /queue clear, /interrupt) and Locust stopped."
    )


def details(cap: dict | None) -> list[str]:
    if not cap:
        return []
    return [
        f"- capacity: {cap['queued']} prompts queued in {cap['fill_s']:.1f} s; server prompts/s without "
        f"{', '.join(f'{r:.0f}' for r in cap['without_all'])} (in run order), with "
        f"{', '.join(f'{r:.0f}' for r in cap['with_all'])}; server CPU per prompt (median) "
        f"{cap['cpu_ms_without']:.2f} ms without, {cap['cpu_ms_with']:.2f} ms with the waiters"
    ]
