"""README.md in the run folder: the baseline document a later run is compared with (hardware,
driver, ComfyUI version and custom nodes, harness parameters, summary metrics, observations)."""

from __future__ import annotations

from reports.markdown_text import md_text
from reports.metadata import harness_parameters, run_metadata


def _md(value) -> str:
    """Markdown table cell: server text escaped (reports/markdown_text.py)."""
    return md_text(value)


def _num(value, unit="") -> str:
    return "–" if value is None else f"{value:.4g}{unit}"


def render_baseline(summary: dict, meta: dict) -> str:
    e2e = summary["e2e_ms"]
    lines = [
        f"# Baseline {summary['run_id']}",
        "",
        f"**{_md(summary['verdict']['text'])}**"
        " — full report: [report.html](report.html), figures: [summary.json](summary.json).",
        "",
        f"Judged: {summary['population']['judged']} {summary['population']['unit']} — "
        f"{_md(summary['population']['label'])}.",
        "",
        "## Environment",
        "",
        "| | |",
        "|---|---|",
    ]
    lines += [f"| {_md(k)} | {_md(v)} |" for k, v in run_metadata(meta)]
    lines += ["", "## Harness parameters", "", "| parameter | value |", "|---|---|"]
    lines += [f"| {_md(k)} | {_md(v)} |" for k, v in harness_parameters(meta)]
    lines += [
        "",
        "## Summary metrics",
        "",
        "| metric | value |",
        "|---|---|",
        f"| images_per_minute (judged window) | {_num(summary['images_per_minute'])} |",
        f"| avg latency | {_num(None if e2e.get('mean') is None else e2e['mean'] / 1000, ' s')} |",
        f"| p95 latency | {_num(None if e2e.get('p95') is None else e2e['p95'] / 1000, ' s')} |",
        f"| error rate % ({summary['units']['name']} after retries) | {_num(summary['error_rate_pct'])} |",
        f"| prompts submitted / ok / failed / cut off | {summary['prompts_submitted']} / {summary['prompts_ok']} / "
        f"{summary['prompts_failed']} / {summary['prompts_cut_off']} |",
        "",
        "## SLA",
        "",
        "| metric | target | measured | result |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {v['metric']} | {v['comparison']} {v['target']:g} {v['unit']} | "
        f"{_md(v.get('note') or _num(v['measured'], ' ' + v['unit']))} | "
        f"{ {True: 'PASS', False: 'FAIL', None: 'n/a'}[v['passed']] } |"
        for v in summary["sla"]
    ]
    lines += ["", "## Observations", ""] + [f"- {_md(o)}" for o in summary["observations"]] + [""]
    return "\n".join(lines)
