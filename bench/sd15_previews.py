"""Does the shared-socket receiver keep up with sampler previews? (A benchmark, not a test.)

Runs SD1.5 prompts on the locally made checkpoint with N users sharing one ComfyClient (one
websocket), on a local ComfyUI started without previews and then with `--preview-method
latent2rgb` (a binary frame per sampling step to the socket, plus the `progress` messages). Per
condition: images/min, and the receiver's lag — our receipt of the prompt's last message minus the
server's own execution end (same host clock) — p50/p99, first half vs second half of the prompts (a
growing backlog shows as a rising lag). Ratios are the result: previews on vs off.

    .venv/bin/python -m bench.sd15_previews --workflow sd15_cpu_small --users 8,32 --prompts 64
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from pathlib import Path

from comfyload.orchestration.sd15_checkpoint import ensure_checkpoint
from comfyload.orchestration.server import LocalComfyUI, comfyui_command, free_port
from comfyload.protocol.client import ComfyClient
from comfyload.protocol.workload import load_workflow


def run_condition(url: str, workflow, users: int, prompts: int) -> dict:
    client = ComfyClient(url).start()
    results, lock, rng = [], threading.Lock(), random.Random(users)
    budget = iter(range(prompts))

    def user():
        while True:
            with lock:
                if next(budget, None) is None:
                    return
                graph = workflow.parameterise(rng)
            r = client.run_prompt(graph, workflow.name, timeout=600)
            with lock:
                results.append(r)

    started = time.monotonic()
    threads = [threading.Thread(target=user) for _ in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    client.close()
    ok = sorted((r for r in results if r.ok), key=lambda r: r.execution_end)
    lag = [r.done_ts * 1000 - r.execution_end for r in ok]
    half = len(lag) // 2
    return {
        "ok": len(ok),
        "failed": len(results) - len(ok),
        "images_min": 60 * len(ok) / elapsed,
        "lag_p50": statistics.median(lag),
        "lag_p99": sorted(lag)[int(0.99 * (len(lag) - 1))],
        "lag_first_half": statistics.median(lag[:half]),
        "lag_second_half": statistics.median(lag[half:]),
        "progress_msgs": statistics.mean(r.progress_messages for r in ok),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workflow", default="sd15_cpu_small")
    p.add_argument("--users", default="8,32", help="comma list of user counts")
    p.add_argument("--prompts", type=int, default=64, help="prompts per condition")
    args = p.parse_args()
    workflow = load_workflow(args.workflow)
    base, code, _ = comfyui_command()
    ensure_checkpoint(base[0], code)
    rows = []
    for previews in (False, True):
        extra = ["--preview-method", "latent2rgb"] if previews else []
        server = LocalComfyUI(
            port=free_port(), work_dir=Path(f"/tmp/comfyload-bench-previews-{previews}"), extra_args=extra
        ).start()
        try:
            run_condition(server.url, workflow, 1, 2)  # warm-up: the model load
            for users in (int(u) for u in args.users.split(",")):
                row = {"previews": previews, "users": users, **run_condition(server.url, workflow, users, args.prompts)}
                rows.append(row)
                print(row, flush=True)
        finally:
            server.stop()
    print(
        f"\n{args.workflow}, {args.prompts} prompts per row; lag = our receipt of the last message - server's execution end"
    )
    print(
        f"{'previews':>8} {'users':>5} {'ok':>4} {'img/min':>8} {'lag p50':>8} {'lag p99':>8} {'1st half':>8} {'2nd half':>8} {'progress':>8}"
    )
    for r in rows:
        print(
            f"{str(r['previews']):>8} {r['users']:>5} {r['ok']:>4} {r['images_min']:>8.1f} {r['lag_p50']:>6.0f}ms "
            f"{r['lag_p99']:>6.0f}ms {r['lag_first_half']:>6.0f}ms {r['lag_second_half']:>6.0f}ms {r['progress_msgs']:>8.1f}"
        )
    off = {r["users"]: r for r in rows if not r["previews"]}
    for r in rows:
        if r["previews"]:
            base_row = off[r["users"]]
            print(
                f"users {r['users']}: previews on/off images/min {r['images_min'] / base_row['images_min']:.2f}, "
                f"lag p50 {r['lag_p50'] - base_row['lag_p50']:+.0f} ms, p99 {r['lag_p99'] - base_row['lag_p99']:+.0f} ms"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
