"""Measurements 1 and 2: ComfyLoad's PromptUser (one Locust process) against a minimal raw
websocket client (bench/raw_client.py), both on a near-instant prompt (Sleep 0 s).

1. generator throughput: completed prompts/s at 50 users, as a ratio ComfyLoad / raw.
2. client-added latency: end-to-end minus the server's own span (create_time -> terminal message
   timestamp), p50/p99, at 1 and at 50 users, as a difference ComfyLoad - raw.

The two clients alternate (A B B A ...) so a drift of the machine hits both alike."""

from __future__ import annotations

from pathlib import Path

from bench.cells import fmt
from bench.locust_runs import run_comfyload
from bench.plan import SLEEP0, WORKFLOWS, log
from bench.raw_client import run_closed_loop, server_span
from bench.server_queries import history_entries
from bench.stats import (
    after_warmup,
    client_added_ms,
    judge,
    percentile,
    pooled_throughput,
    relative_spread,
    spread,
    throughput,
)

TARGETS = {"ratio": 0.95, "added_ms": 1.0}


def comfyload_side(url: str, users: int, jobs: int, work: Path) -> dict:
    records = [
        r
        for r in run_comfyload(url, WORKFLOWS / "sleep0.json", users, jobs, work, f"cl-u{users}")
        if r.get("outcome") == "success"
    ]
    timed = [r for r in records if r.get("create_time") is not None and r.get("execution_end") is not None]
    added = [
        client_added_ms(r["intended_send_ts"], r["done_ts"], r["create_time"], r["execution_end"])
        for r in after_warmup(timed, key=lambda r: r["intended_send_ts"])
    ]
    span = max(r["done_ts"] for r in records) - min(r["intended_send_ts"] for r in records)
    return {"count": len(records), "span": span, "added": added, "missing_create_time": len(records) - len(timed)}


def raw_side(url: str, users: int, jobs: int) -> dict:
    results = [
        r
        for r in run_closed_loop(url, SLEEP0, users, jobs, max_seconds=120)
        if r["executing_none"] is not None and r["outcome"] == "execution_success"
    ]
    entries = history_entries(url, [r["prompt_id"] for r in results])
    added_terminal, added_none = [], []
    for r in after_warmup(results, key=lambda r: r["sent"]):
        span = server_span(entries.get(r["prompt_id"], {}))
        if span["create_time"] is None or span["execution_end"] is None:
            continue
        added_terminal.append(client_added_ms(r["sent"], r["terminal"], span["create_time"], span["execution_end"]))
        added_none.append(client_added_ms(r["sent"], r["executing_none"], span["create_time"], span["execution_end"]))
    done = throughput([r["sent"] for r in results], [r["executing_none"] for r in results])
    span_s = len(results) / done if done else 0.0
    return {"count": len(results), "span": span_s, "added": added_terminal, "added_none": added_none}


def run(url: str, users: int, jobs: int, rounds: int, work: Path) -> dict:
    """A B B A ...: raw and ComfyLoad alternate so a drift of the machine hits both alike."""
    sides = {"comfyload": [], "raw": []}
    for i in range(rounds):
        order = ("raw", "comfyload") if i % 2 == 0 else ("comfyload", "raw")
        for side in order:
            log(f"{side}: {users} user(s), {jobs} prompts (round {i + 1}/{rounds})")
            result = comfyload_side(url, users, jobs, work) if side == "comfyload" else raw_side(url, users, jobs)
            log(f"  {result['count']} done, {result['count'] / result['span']:.0f} prompts/s")
            sides[side].append(result)
    out = {}
    for side, runs in sides.items():
        added = [a for r in runs for a in r["added"]]
        out[side] = {
            "rate": pooled_throughput([(r["count"], r["span"]) for r in runs]),
            "p50": percentile(added, 50),
            "p99": percentile(added, 99),
            "n": len(added),
            "rates": [r["count"] / r["span"] for r in runs],
            "run_p50": [percentile(r["added"], 50) for r in runs],
            "run_p99": [percentile(r["added"], 99) for r in runs],
        }
        if side == "raw":
            none = [a for r in runs for a in r["added_none"]]
            out[side].update(p50_none=percentile(none, 50), p99_none=percentile(none, 99))
        else:
            out[side]["missing_create_time"] = sum(r["missing_create_time"] for r in runs)
    out["ratio"] = out["comfyload"]["rate"] / out["raw"]["rate"]
    # the noise floor: how far one client's own runs disagree
    out["noise_ratio"] = max(relative_spread(out[side]["rates"]) for side in sides)
    for q in ("p50", "p99"):
        out[f"noise_{q}"] = max(spread(out[side][f"run_{q}"]) for side in sides)
    return out


def rows(many: dict | None, one: dict | None) -> list[list[str]]:
    """Row 1 from the 50-user comparison; rows 2 from the 1-user and the 50-user ones."""
    out = []
    if many:
        out.append(
            [
                "1",
                "generator throughput, 50 users, Sleep 0 (prompts/s)",
                fmt(many["comfyload"]["rate"], ".0f"),
                fmt(many["raw"]["rate"], ".0f") + " (raw, `executing` None)",
                f"ratio {many['ratio']:.3f} (noise ±{many['noise_ratio']:.2f})",
                f">= {TARGETS['ratio']}",
                judge(many["ratio"] >= TARGETS["ratio"], TARGETS["ratio"] - many["ratio"], many["noise_ratio"]),
            ]
        )
    for users, c in ((1, one), (50, many)):
        if not c:
            continue
        for q in ("p50", "p99"):
            diff = c["comfyload"][q] - c["raw"][q]
            out.append(
                [
                    "2",
                    f"client-added latency {q}, {users} user{'s' if users > 1 else ''} (ms)",
                    fmt(c["comfyload"][q], ".2f"),
                    f"{fmt(c['raw'][q], '.2f')} (raw, terminal msg; at `executing` None {fmt(c['raw'][q + '_none'], '.2f')})",
                    f"diff {diff:+.2f} ms (noise ±{c['noise_' + q]:.2f})",
                    f"<= +{TARGETS['added_ms']:g} ms",
                    judge(diff <= TARGETS["added_ms"], diff - TARGETS["added_ms"], c["noise_" + q]),
                ]
            )
    return out


HOW = [
    "- **1, 2**: workload `bench/workflows/sleep0.json` (Sleep 0 s, never cached). ComfyLoad = "
    "`locust -f locustfile.py --headless PromptUser --jobs N` in one process; raw = `bench/raw_client.py` "
    "(websocket-client + requests, one socket, one thread per user, submit with client_id + prompt_id, wait for "
    "`executing` node=None). The two alternate (A B B A) and each side's runs are pooled. "
    "Throughput = prompts / (last done - first send); ComfyLoad is done at the terminal message "
    "(`execution_success`), raw at `executing` None, which follows it.",
    "- Client-added latency = end-to-end (client clock) - server span (`create_time` -> `execution_success` "
    "timestamp, server ms, 1 ms resolution). For ComfyLoad: `e2e_ms - (execution_end - create_time)` from its "
    "records. The raw client is measured at the same message (terminal) for the comparison, and at `executing` "
    "None for reference. ComfyUI stamps create_time after validating the prompt, so the figure includes the "
    "HTTP round trip, validation and the websocket delivery: at 50 users most of it is the server's event loop, "
    "the same for both clients; the difference is what the harness adds. The first 5 % of each run's prompts "
    "(by send time) are left out of the percentiles, on both sides.",
]


def details(many: dict | None, one: dict | None) -> list[str]:
    out = []
    if many:
        out.append(
            f"- throughput per run (prompts/s): ComfyLoad {', '.join(f'{r:.0f}' for r in many['comfyload']['rates'])}; "
            f"raw {', '.join(f'{r:.0f}' for r in many['raw']['rates'])}; ComfyLoad records without create_time: "
            f"{many['comfyload']['missing_create_time']}"
        )
    if one:
        out.append(f"- 1 user, prompts/s: ComfyLoad {one['comfyload']['rate']:.0f}, raw {one['raw']['rate']:.0f}")
    return out
