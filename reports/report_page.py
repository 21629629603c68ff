"""report.html: the SLA verdict first, then the figures, charts, observations, run metadata and
links to the raw files. One self-contained file: charts are inline PNGs, no network needed.
"""

from __future__ import annotations

import json

from comfyload.analysis.ramp import knee_text
from comfyload.analysis.split_gaps import SPLIT_NAMES, gap_note
from reports.html_page import document, esc, figure, fmt, state_cell, table, table_or_note
from reports.metadata import harness_parameters, run_metadata

RAW_FILES = (
    "meta.json",
    "summary.json",
    "README.md",
    "comfyui_metrics.ndjson",
    "locust_stats.csv",
    "locust_stats_history.csv",
    "locust_failures.csv",
    "locust_exceptions.csv",
)


def verdict_section(summary: dict) -> str:
    """The headline (a drill's own verdict for a drill, else the SLA's), then the SLA table,
    which a drill shows as information under its verdict."""
    verdict = summary["verdict"]
    banner = f'<p class="verdict {"pass" if verdict["passed"] else "fail"}" id="verdict">{esc(verdict["text"])}</p>'
    if verdict["judged_by"] == "drill":
        banner += drill_table(summary.get("fault_verdict")) + (
            "<p>The SLA below is information: a drill runs a few books to provoke one fault, so its "
            "figures are not a capacity verdict.</p>"
        )
    pop = summary["population"]
    banner += (
        f'<p id="population">Judged: {pop["judged"]} {esc(pop["unit"])} — {esc(pop["label"])}'
        + (f"; window {pop['duration_s']:.1f} s" if pop.get("duration_s") is not None else "")
        + (
            f"; {pop['cut_off_on_track_excluded']} cut off on track, not judged"
            if pop["cut_off_on_track_excluded"]
            else ""
        )
        + ".</p>"
    )
    rows = [
        (
            v["metric"],
            f"{v['comparison']} {v['target']:g} {v['unit']}",
            v.get("note") or ("not measured" if v["measured"] is None else f"{v['measured']:.4g} {v['unit']}"),
            state_cell(v["passed"]),
        )
        for v in summary["sla"]
    ]
    audit = summary.get("audit") or {}
    counted = "".join(
        f"; {k}: {audit[k]['started']} started, {audit[k]['recorded']} recorded"
        for k in ("pages", "books")
        if (audit.get(k) or {}).get("recorded")
    )
    rows.append(
        (
            "audit",
            "every prompt, page and book recorded once",
            f"{audit.get('submitted')} submitted, {audit.get('recorded')} recorded{counted}"
            + (f" — {audit['problem']}" if audit.get("problem") else ""),
            state_cell(audit.get("ok")),
        )
    )
    return banner + table(("metric", "target", "measured", "result"), rows, raw_columns=(3,))


def _seconds(stats: dict, key: str):
    value = stats.get(key)
    return None if value is None else value / 1000.0


def figures_section(summary: dict) -> str:
    units = summary["units"]
    rows = [
        ("images per minute (judged window)", summary["images_per_minute"]),
        (f"error rate, {units['name']} after retries (%)", summary["error_rate_pct"]),
        (
            f"{units['name']}: judged / ok / failed / cut off / dropped",
            f"{units['judged']} / {units['ok']} / {units['failed']} / {units['cut_off']} / {units['dropped']}",
        ),
        (
            "prompts submitted / ok / failed / cut off",
            f"{summary['prompts_submitted']} / {summary['prompts_ok']} / {summary['prompts_failed']} / "
            f"{summary['prompts_cut_off']}",
        ),
        ("outcomes", ", ".join(f"{k}: {v}" for k, v in sorted(summary["outcomes"].items(), key=lambda kv: str(kv[0])))),
    ]
    window = summary.get("window")
    if window:
        rows.append(("judged window (s)", window["duration_s"]))
    books = summary.get("books")
    if books:
        rows += [
            (
                "books ok / failed / cut off / total",
                f"{books['ok']} / {books['failed']} / {books['cut_off']} / {books['total']}",
            ),
            (
                "book latency p50 / p95 (s)",
                f"{fmt(_seconds(books['e2e_ms'], 'p50'))} / {fmt(_seconds(books['e2e_ms'], 'p95'))}",
            ),
            (
                "pages / cut off / retried / retries / need regeneration",
                f"{books['pages']} / {books['pages_cut_off']} / {books['pages_retried']} / {books['retries']} / "
                f"{books['pages_needs_regeneration']}",
            ),
        ]
    arrivals = summary.get("arrivals")
    if arrivals:
        rows.append(
            (
                "arrivals scheduled / on time / late / dropped / unserved at the end",
                " / ".join(str(arrivals[k]) for k in ("scheduled", "on_time", "late", "dropped", "backlog_left")),
            )
        )
        rows.append(
            (
                "lateness of late arrivals p50 / p95 (s)",
                f"{fmt(_seconds(arrivals['lateness_ms'], 'p50'))} / {fmt(_seconds(arrivals['lateness_ms'], 'p95'))}",
            )
        )
    split = [
        (name, *(_seconds(summary[key], q) for q in ("p50", "p90", "p95", "p99", "max", "mean")))
        for name, key in (
            (f"end-to-end ({units['name']})", "e2e_ms"),
            ("queue wait (prompts)", "queue_wait_ms"),
            ("execution (prompts)", "execution_ms"),
            ("download (prompts)", "download_ms"),
        )
    ]
    gaps = summary.get("split_gaps") or {}
    return (
        table(("figure", "value"), rows)
        + "<h3>Latency split (seconds; successes of the judged population and the prompts sent in its window)</h3>"
        + table(("", "p50", "p90", "p95", "p99", "max", "mean"), split)
        + "".join(
            f'<p class="split-gap" id="gap-{key}">{esc(name)}: {esc(gap_note(gaps[key]))}</p>'
            for name, key in SPLIT_NAMES
            if key in gaps
        )
    )


def outages_section(summary: dict) -> str:
    outages = summary.get("outages") or []
    if not outages:
        return "<p>The server answered throughout the run (no outage recorded).</p>"
    t0 = (summary.get("window") or {}).get("start_ts") or outages[0]["start_ts"]
    return table(
        ("server", "down at (s into the run)", "back after (s)", "recovered (first success) after (s)"),
        [
            (
                o["server"],
                o["start_ts"] - t0,
                "never back" if o["duration_s"] is None else o["duration_s"],
                "not recovered" if o["recovery_s"] is None else o["recovery_s"],
            )
            for o in outages
        ],
    )


def errors_section(summary: dict) -> str:
    keys = ("outcome", "error_type", "count", "pct_of_renders", "example_message", "example_node")
    rows = [[e[k] for k in keys] for e in summary["errors"]]
    headers = ("outcome", "error type", "count", "% of renders", "example message", "node")
    return table_or_note(headers, rows, "No failed renders.")


def drill_table(verdict: dict | None) -> str:
    """The fault drill's verdict (fault_verdict.json): expected vs observed, per check."""
    if not verdict:
        return ""
    state = "PASS" if verdict["passed"] else "FAIL"
    return (
        f"<p>Drill <b>{esc(verdict['scenario'])}</b>: expected {esc(verdict['expected'])} — <b>{state}</b></p>"
        + table(
            ("check", "expected", "observed", "verdict"),
            [(c["check"], c["expected"], c["observed"], "PASS" if c["passed"] else "FAIL") for c in verdict["checks"]],
        )
    )


def faults_section(summary: dict) -> str:
    faults = summary["faults"]
    if not faults:
        return "<p>No fault events in this run.</p>"
    return drill_table(summary.get("fault_verdict")) + _fault_events_table(summary, faults)


def _fault_events_table(summary: dict, faults: list) -> str:
    t0 = (summary.get("window") or {}).get("start_ts") or faults[0]["ts"]
    return table(
        ("event", "t (s)", "recovery (s)", "details"),
        [
            (
                f["name"],
                f["ts"] - t0,
                f.get("recovery_s"),
                ", ".join(f"{k}={v}" for k, v in f.items() if k not in ("kind", "name", "ts", "recovery_s")),
            )
            for f in faults
        ],
    )


def servers_section(summary: dict) -> str:
    """A fleet's per-server figures and its imbalance (busiest server / even share)."""
    fleet = summary.get("servers")
    if not fleet:
        return "<p>One server in this run.</p>"
    rows = [
        (
            server,
            v["prompts"],
            v["ok"],
            v["failed"],
            v["images_per_minute"],
            None if v["p95_ms"] is None else v["p95_ms"] / 1000,
            None if v["queue_wait_p50_ms"] is None else v["queue_wait_p50_ms"] / 1000,
        )
        for server, v in fleet["by_server"].items()
    ]
    return (
        f"<p>Imbalance: <b>{fmt(fleet['imbalance'])}</b> "
        "(busiest server's completions over an even share; 1.0 = even)</p>"
        + table(("server", "prompts", "ok", "failed", "images/min", "p95 (s)", "queue wait p50 (s)"), rows)
    )


def ramp_section(summary: dict) -> str:
    steps = summary["ramp_steps"]
    if not steps:
        return "<p>Not a ramp: no ramp steps in this run.</p>"
    knee = summary.get("ramp_knee") or {}
    head = (f'<p id="knee"><b>{esc(knee_text(knee))}</b>.</p>') if knee else ""
    return head + table(
        ("users", "renders", "images/min", "p95 (s)", "error %", "GPU util %", "result"),
        [
            (
                s.get("users"),
                s.get("renders"),
                s.get("images_per_min"),
                s.get("p95_s"),
                s.get("error_pct"),
                s.get("gpu_util_mean"),
                "pass" if s.get("passed") else "breach: " + ", ".join(s.get("breached") or []),
            )
            for s in steps
        ],
    )


def _plain_number(value, digits: int = 0) -> str:
    """12,345 MB, never 1.234e+04."""
    return "–" if value is None else f"{value:,.{digits}f}"


def gpu_section(summary: dict) -> str:
    gpus = summary["gpu"]
    if not gpus:
        return "<p>No GPU data in this run (no probe samples).</p>"
    rows = []
    for g in gpus:
        host = g["source"] == "system_stats" and str(g["name"] or "").lower().startswith("cpu")
        nvml = g["source"] in ("nvml", "sidecar")
        memory = "host RAM" if host else "VRAM"
        rows.append(
            (
                g["gpu"],
                g["name"],
                f"{g['source']} ({'host figures, no GPU' if host else 'GPU'})",
                f"{_plain_number(g['util_peak_pct'])} / {_plain_number(g['util_mean_pct'])}"
                if g["util_peak_pct"] is not None
                else "not measured",
                f"{memory}: {_plain_number(g['vram_peak_mb'])} / {_plain_number(g['vram_total_mb'])}",
                f"{memory}: {_plain_number(g['vram_headroom_mb'])} MB ({_plain_number(g['vram_headroom_pct'], 1)} %)",
                f"{_plain_number(g['power_mean_w'], 1)} / {_plain_number(g['power_peak_w'], 1)} / "
                f"{_plain_number(g['power_limit_w'], 1)}"
                if g["power_peak_w"] is not None
                else "not measured",
                _plain_number(g["temp_peak_c"]) if g["temp_peak_c"] is not None else "not measured",
                _plain_number(g["throttle_s"], 1) if nvml else "not measured",
            )
        )
    return table(
        (
            "GPU",
            "name",
            "source",
            "util peak / mean %",
            "memory peak / total MB",
            "memory headroom",
            "power mean / peak / limit W",
            "temp peak °C",
            "throttled (s)",
        ),
        rows,
    )


def nodes_section(summary: dict) -> str:
    keys = ("workflow", "node", "class_type", "runs", "mean_ms", "share_pct")
    rows = [[r[k] for k in keys] for r in summary["bottleneck_nodes"]]
    headers = ("workflow", "node", "class", "runs", "mean ms", "share of node time %")
    return table_or_note(headers, rows, "No per-node timings in this run.")


def metadata_section(meta: dict) -> str:
    return (
        table(("", "run"), run_metadata(meta))
        + "<h3>Harness parameters</h3>"
        + table(("parameter", "value"), harness_parameters(meta))
        + "<details><summary>all parameters</summary>"
        + f"<pre>{esc(json.dumps(meta.get('parameters'), indent=1, default=str))}</pre></details>"
    )


def render_report(summary: dict, meta: dict, charts: list) -> str:
    observations = "".join(f"<li>{esc(o)}</li>" for o in summary["observations"]) or "<li>Nothing to note.</li>"
    links = " · ".join(f'<a href="{esc(name)}">{esc(name)}</a>' for name in RAW_FILES)
    chart_html = "".join(figure(c) for c in charts) or "<p>No chart: the run finished no render.</p>"
    body = (
        f"<h1>ComfyLoad report — {esc(summary['run_id'])}</h1>"
        f"<p>scenario {esc(summary.get('scenario'))} · workflow {esc((meta.get('workflow') or {}).get('name'))}"
        f" · server {esc(meta.get('server'))}</p>"
        "<h2>SLA</h2>"
        + verdict_section(summary)
        + "<h2>Figures</h2>"
        + figures_section(summary)
        + "<h2>Observations</h2><ul>"
        + observations
        + "</ul>"
        + "<h2>Charts</h2>"
        + chart_html
        + "<h2>Errors by outcome and type</h2>"
        + errors_section(summary)
        + "<h2>Outages and recovery</h2>"
        + outages_section(summary)
        + "<h2>Faults</h2>"
        + faults_section(summary)
        + "<h2>Ramp</h2>"
        + ramp_section(summary)
        + "<h2>Servers</h2>"
        + servers_section(summary)
        + "<h2>GPU</h2>"
        + gpu_section(summary)
        + "<h2>Bottleneck nodes</h2>"
        + nodes_section(summary)
        + "<h2>Run metadata</h2>"
        + metadata_section(meta)
        + "<h2>Raw files</h2><p>"
        + links
        + "</p>"
    )
    return document(f"ComfyLoad report {summary['run_id']}", body)
