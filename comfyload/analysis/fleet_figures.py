"""A fleet's balance as the users feel it: per server, how many of our prompts were in flight
(time-weighted mean and peak) and the latency they saw, and two imbalances. Completions alone hide
a bad split: 21/19 completions looked even while one server held 3 prompts and the other 1, and
their p50s were 1.5 s and 0.5 s. Pure function of the prompt records (summary and report read it)."""

from __future__ import annotations

from comfyload.analysis.metrics import percentile


def _start(r: dict) -> float:
    return r.get("sent_ts") or r["intended_send_ts"]


def _in_flight(spans: list[tuple[float, float]], begin: float, end: float) -> tuple[float, int]:
    """(time-weighted mean over [begin, end], peak) of the number of open spans."""
    if not spans or end <= begin:
        return 0.0, 0
    busy = sum(min(e, end) - max(s, begin) for s, e in spans if e > begin and s < end)
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda x: (x[0], x[1]))
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return busy / (end - begin), peak


def server_balance(prompts: list[dict]) -> dict | None:
    """{"by_server": {server: {...}}, "in_flight_imbalance", "latency_imbalance"}; None for one server.
    in_flight_imbalance: the busiest server's mean in flight over the fleet's mean (1.0 = even);
    latency_imbalance: the slowest server's p50 over the fastest's."""
    done = [r for r in prompts if r.get("done_ts") is not None and r.get("server")]
    servers = sorted({r["server"] for r in done})
    if len(servers) < 2:
        return None
    begin = min(_start(r) for r in done)
    end = max(r["done_ts"] for r in done)
    by_server = {}
    for server in servers:
        mine = [r for r in done if r["server"] == server]
        ok = [r["e2e_ms"] for r in mine if r.get("outcome") == "success" and r.get("e2e_ms") is not None]
        mean, peak = _in_flight([(_start(r), r["done_ts"]) for r in mine], begin, end)
        by_server[server] = {
            "prompts": len(mine),
            "ok": len(ok),
            "mean_in_flight": mean,
            "max_in_flight": peak,
            "p50_ms": percentile(ok, 50),
            "p95_ms": percentile(ok, 95),
        }
    means = [v["mean_in_flight"] for v in by_server.values()]
    p50s = [v["p50_ms"] for v in by_server.values() if v["p50_ms"]]
    fleet_mean = sum(means) / len(means)
    return {
        "by_server": by_server,
        "in_flight_imbalance": max(means) / fleet_mean if fleet_mean else None,
        "latency_imbalance": max(p50s) / min(p50s) if len(p50s) == len(by_server) else None,
    }


def format_balance(balance: dict) -> list[str]:
    """Lines for the console summary, one per server and one for the imbalances."""
    lines = []
    for server, v in balance["by_server"].items():
        p50 = "-" if v["p50_ms"] is None else f"{v['p50_ms'] / 1000:.3f} s"
        p95 = "-" if v["p95_ms"] is None else f"{v['p95_ms'] / 1000:.3f} s"
        lines.append(
            f"  {server}: in flight mean {v['mean_in_flight']:.2f} (max {v['max_in_flight']}), "
            f"p50 {p50}, p95 {p95}, {v['ok']} ok"
        )
    fi, li = balance["in_flight_imbalance"], balance["latency_imbalance"]
    lines.append(
        "fleet balance: in flight "
        + ("-" if fi is None else f"{fi:.2f}")
        + " (busiest / even), p50 "
        + ("-" if li is None else f"{li:.2f}")
        + " (slowest / fastest)"
    )
    return lines
