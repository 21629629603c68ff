"""What the Prometheus exporter costs the harness. (A benchmark, not a test.)

The same fixed workload (Sleep 0 prompts, --jobs N, U users, one Locust process) against one local
ComfyUI, alternating without the exporter (--metrics-port 0) and with it (a free port, scraped every
--scrape-interval seconds for the whole run, as a Prometheus would), A B B A per round. Each side's
runs are pooled: prompts / (last done - first intended send), from the run's own records. The
result is the ratio with / without, and the spread of the per-run rates on each side (the noise).
Beside it, the Locust process's own CPU time per prompt (user + sys, from the kernel's rusage of
the reaped child), which a shared machine's load disturbs far less than the wall-clock rate.

    .venv/bin/python -m bench.exporter_cost --jobs 1000 --users 20 --rounds 2
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

from bench.locust_runs import locust_command, locust_env, read_prompt_records
from bench.plan import SLEEP0, WORKFLOWS
from bench.raw_client import run_closed_loop
from bench.stats import pooled_throughput
from comfyload.common.paths import REPO
from comfyload.common.processes import wait_or_stop
from comfyload.orchestration.server import LocalComfyUI, free_port


class Scraper:
    """GET /metrics every `interval` seconds until stopped; counts the scrapes that answered."""

    def __init__(self, port: int, interval: float):
        self.url, self.interval = f"http://127.0.0.1:{port}/metrics", interval
        self.answered, self.stopping = 0, threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                if requests.get(self.url, timeout=2).ok:
                    self.answered += 1
            except requests.RequestException:
                pass


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # reaped children only: the Locust runs, not ComfyUI
    return usage.ru_utime + usage.ru_stime


def one_run(url: str, jobs: int, users: int, work: Path, exporter: bool, interval: float) -> tuple:
    """(successful prompts, span s, scrapes answered, Locust CPU s) of one bounded headless run."""
    run_dir = work / f"{'with' if exporter else 'without'}-{time.monotonic_ns()}"
    port = free_port() if exporter else 0
    cmd = locust_command(url, WORKFLOWS / "sleep0.json", users, jobs, run_dir, 300, timeout_s=60)
    cmd[-1:-1] = ["--metrics-port", str(port), "--metrics-linger", "0"]
    scraper = Scraper(port, interval) if exporter else None
    cpu_before = children_cpu_s()
    with open(work / "locust.log", "ab") as out:
        proc = subprocess.Popen(cmd, cwd=str(REPO), env=locust_env(work), stdout=out, stderr=subprocess.STDOUT)
        if scraper is not None:
            scraper.thread.start()
        try:
            proc.wait(360)
        finally:
            if scraper is not None:
                scraper.stopping.set()
            wait_or_stop([proc])
    ok = [r for r in read_prompt_records(run_dir) if r.get("outcome") == "success"]
    if not ok:
        raise RuntimeError(f"run {run_dir.name} recorded no success; see {work / 'locust.log'}")
    span = max(r["done_ts"] for r in ok) - min(r["intended_send_ts"] for r in ok)
    return len(ok), span, scraper.answered if scraper else 0, children_cpu_s() - cpu_before


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000, help="prompts per run")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2, help="A B B A rounds")
    parser.add_argument("--scrape-interval", type=float, default=1.0, help="seconds between scrapes (Prometheus')")
    args = parser.parse_args(argv)
    runs = {False: [], True: []}
    cpu = {False: [0.0, 0], True: [0.0, 0]}  # Locust CPU s, prompts
    scrapes = 0
    with tempfile.TemporaryDirectory(prefix="comfyload-bench-exporter-") as tmp:
        work = Path(tmp)
        server = LocalComfyUI(port=free_port(), work_dir=work / "comfyui").start()
        try:
            run_closed_loop(server.url, SLEEP0, 4, 200, max_seconds=60)  # warm-up
            for _ in range(args.rounds):
                for exporter in (False, True, True, False):
                    count, span, answered, cpu_s = one_run(
                        server.url, args.jobs, args.users, work, exporter, args.scrape_interval
                    )
                    runs[exporter].append((count, span))
                    cpu[exporter][0] += cpu_s
                    cpu[exporter][1] += count
                    scrapes += answered
                    print(
                        f"[bench] exporter {'on ' if exporter else 'off'}: {count / span:7.1f} prompts/s, "
                        f"Locust CPU {1000 * cpu_s / count:.2f} ms/prompt"
                        + (f" ({answered} scrapes)" if exporter else ""),
                        file=sys.stderr,
                        flush=True,
                    )
        finally:
            server.stop()
    without, with_ = pooled_throughput(runs[False]), pooled_throughput(runs[True])
    spread = {k: statistics.pstdev([c / s for c, s in v]) / pooled_throughput(v) for k, v in runs.items()}
    print(
        f"exporter cost, Sleep 0 x {args.jobs}, {args.users} users, {2 * args.rounds} runs a side:\n"
        f"  without: {without:.1f} prompts/s   with (scraped every {args.scrape_interval:g} s, {scrapes} scrapes): "
        f"{with_:.1f} prompts/s\n"
        f"  ratio with/without: {with_ / without:.3f}  (run-to-run spread: without ±{100 * spread[False]:.1f} %, "
        f"with ±{100 * spread[True]:.1f} %)\n"
        f"  Locust CPU per prompt: without {1000 * cpu[False][0] / cpu[False][1]:.2f} ms, "
        f"with {1000 * cpu[True][0] / cpu[True][1]:.2f} ms (ratio {cpu[True][0] / cpu[True][1] / (cpu[False][0] / cpu[False][1]):.3f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
