"""`make bench`: is the harness ever the bottleneck, and are its numbers right?

Starts its own ComfyUI on a free 127.0.0.1 port, runs five measurements against it, prints one
table and writes bench/RESULTS.md (machine description + the figures). Every figure that can be
is a ratio or a difference taken in the same run, alternating the two sides (A B B A ...),
because this machine is shared and noisy.

  1. generator throughput: ComfyLoad's PromptUser (one Locust process) vs a minimal raw websocket
     client (bench/raw_client.py) on a near-instant prompt (Sleep 0 s); completed prompts/s.
  2. client-added latency: end-to-end minus the server's own span (create_time -> terminal
     message timestamp), p50/p99, at 1 and at 50 users, both clients.
  3. capacity: one Locust process holding 2,000 users waiting on queued Sleep prompts: its RSS,
     its CPU, and the server's own prompts/s on a fixed workload with those waiters vs without.
  4. report build time for a generated 24-hour soak (bench/report_build.py, called as is).
  5. measurement error of a /history poller at 2 s vs ComfyLoad (websocket) on Sleep 1.3 s.

    .venv/bin/python -m bench.run [--quick] [--results bench/RESULTS.md]

Every load loop is bounded in count and in time; nothing leaves 127.0.0.1.

One module per measurement (client_comparison.py: 1 and 2, capacity.py, report_build_time.py,
measurement_error.py), the table in table.py; the yardstick client is raw_client.py, the
arithmetic stats.py.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench import capacity, client_comparison, measurement_error, report_build_time
from bench.machine import machine
from bench.plan import SLEEP0, Plan, log
from bench.raw_client import run_closed_loop
from bench.table import table_rows, text_table, write_results
from comfyload.common.paths import REPO
from comfyload.orchestration.server import LocalComfyUI, free_port


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="shorter runs (about a minute and a half)")
    parser.add_argument("--results", default=str(REPO / "bench" / "RESULTS.md"), help="where to write the results")
    parser.add_argument(
        "--skip", default="", help="comma-separated measurements to leave out (1-5; 1 and 2 go together)"
    )
    args = parser.parse_args(argv)
    plan, skip = Plan(args.quick), set(filter(None, args.skip.split(",")))
    started = time.monotonic()
    res: dict = {}
    with tempfile.TemporaryDirectory(prefix="comfyload-bench-") as tmp:
        work = Path(tmp)
        server = LocalComfyUI(port=free_port(), work_dir=work / "comfyui")
        server.start()
        try:
            url = server.url
            log(f"ComfyUI on {url}; warm-up")
            run_closed_loop(url, SLEEP0, 4, 200, max_seconds=60)
            if not {"1", "2"} & skip:
                res["throughput"] = client_comparison.run(url, plan.many_users, plan.jobs_many, 2 * plan.rounds, work)
                res["latency1"] = client_comparison.run(url, 1, plan.jobs_one, 2 * plan.rounds, work)
            if "3" not in skip:
                res["capacity"] = capacity.run(url, plan, work, server.process.pid)
            if "5" not in skip:
                res["error"] = measurement_error.run(url, plan, work)
            mach = machine(url)
        finally:
            server.stop()
    if "4" not in skip:  # after the server is gone: it has the machine to itself
        res["report"] = report_build_time.run(plan)
    rows = table_rows(res, plan)
    elapsed = time.monotonic() - started
    print(text_table(rows))
    write_results(Path(args.results), rows, res, mach, plan, elapsed)
    log(f"written {args.results} ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
