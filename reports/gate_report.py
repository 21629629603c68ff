"""The release gate's report: GO / NO-GO first, then what changed in the environment, every SLA
figure side by side with its interval and verdict, the drills' table, links to both runs'
reports. gate.json (the data) and gate.html (the page) in the gate folder; the console head is
the same order."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path

from comfyload.analysis.environment_diff import Change, change_rows, format_changes
from reports.compare import JUDGED_HEADER, REGRESSION, compare_runs, format_judged, judged_rows, noise_method
from reports.html_page import document, esc, state_cell, table


def gate_result(baseline: Path, candidate: Path, sla_path, drills: list[dict], seed: int = 0, force=False) -> dict:
    """The verdict and its reasons: a figure that regressed, a drill that failed, an SLA the
    baseline met and the candidate breaches. GO only when there is none."""
    compared = compare_runs(baseline, candidate, sla_path, seed, force)
    reasons = [
        f"{j.metric} regressed: {_num(j.baseline)} → {_num(j.candidate)} {j.unit}"
        + ("" if j.delta_pct is None else f" ({j.delta_pct:+.1f} %)")
        for j in compared["judged"]
        if j.verdict == REGRESSION
    ]
    if compared["verdict"] == REGRESSION and not reasons:
        reasons += compared["notes"][-1:]
    base_summary, cand_summary = compared["summaries"]
    newly = [m for m in cand_summary.get("breached", []) if m not in base_summary.get("breached", [])]
    if newly:
        reasons.append(f"the candidate breaches the SLA the baseline met ({', '.join(newly)})")
    for d in drills:
        if d.get("passed") is False:
            failed = [c["check"] for c in d.get("checks", []) if not c.get("passed")]
            reasons.append(f"drill {d['scenario']} failed ({', '.join(failed) or 'no verdict'})")
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "verdict": "NO-GO" if reasons else "GO",
        "reasons": reasons,
        "baseline": _run_entry(compared["baseline"].path, base_summary),
        "candidate": _run_entry(compared["candidate"].path, cand_summary),
        "changed": [{"what": c.what, "baseline": c.baseline, "candidate": c.candidate} for c in compared["changed"]],
        "figures": [asdict(j) for j in compared["judged"]],
        "figure_rows": judged_rows(compared),
        "figure_lines": format_judged(compared),
        "noise": noise_method(compared["limits"]),
        "notes": compared["notes"],
        "drills": drills,
    }


def _num(v) -> str:
    return "–" if v is None else f"{v:.4g}"


def _run_entry(path: Path, summary: dict) -> dict:
    return {
        "run_dir": str(path),
        "report": str(Path(path) / "report.html"),
        "run_id": summary.get("run_id"),
        "sla_verdict": (summary.get("verdict") or {}).get("text"),
    }


def drill_rows(drills: list[dict]) -> list[tuple]:
    rows = []
    for d in drills:
        if d.get("skipped"):
            rows.append((d["scenario"], "–", d["skipped"], "", None))
        for c in d.get("checks", []):
            rows.append((d["scenario"], c["check"], c["expected"], c["observed"], c["passed"]))
    return rows


def format_head(result: dict) -> str:
    lines = [f"GATE: {result['verdict']}"]
    lines += [f"  because {r}" for r in result["reasons"]]
    lines += [f"note: {n}" for n in result["notes"]]
    if result.get("injected"):
        lines.append(f"note: the candidate ran with an injected Sleep ({result['injected']})")
    lines += format_changes([Change(**c) for c in result["changed"]])
    lines += ["figures (baseline → candidate):", *result["figure_lines"], result["noise"]]
    lines.append("drills:" if result["drills"] else "drills: none run")
    for d in result["drills"]:
        state = "skipped" if d.get("skipped") else "PASS" if d.get("passed") else "FAIL"
        failed = [c["check"] for c in d.get("checks", []) if not c.get("passed")]
        lines.append(f"  {d['scenario']:<12} {state}" + (f" ({', '.join(failed)})" if failed else ""))
    lines.append(f"baseline report:  {result['baseline']['report']}")
    lines.append(f"candidate report: {result['candidate']['report']}")
    if result.get("promoted"):
        lines.append(f"promoted: the candidate is the new baseline ({result['promoted']})")
    total = (result.get("timings_s") or {}).get("total")
    if total is not None:
        lines.append(f"{result.get('mode', 'quick')} gate: {total:.0f} s")
    return "\n".join(lines)


def _link(target: str, page_dir: Path) -> str:
    href = os.path.relpath(target, page_dir)
    return f'<a href="{esc(href)}">{esc(target)}</a>'


def render_gate(result: dict, page_dir: Path) -> str:
    go = result["verdict"] == "GO"
    changed = result["changed"]
    timings = result.get("timings_s") or {}
    body = (
        f"<h1>ComfyLoad release gate</h1>"
        f'<section id="verdict"><p class="verdict {"pass" if go else "fail"}">{esc(result["verdict"])}</p>'
        + ("<ul>" + "".join(f"<li>{esc(r)}</li>" for r in result["reasons"]) + "</ul>" if result["reasons"] else "")
        + "".join(f"<p><b>Note:</b> {esc(n)}</p>" for n in result["notes"])
        + (f"<p><b>Injected:</b> Sleep {esc(result['injected'])}</p>" if result.get("injected") else "")
        + f"<p>{esc(result.get('mode', 'quick'))} gate, {esc(result['created'])}"
        + (f", {timings['total']:.0f} s" if timings.get("total") is not None else "")
        + "</p></section>"
        + '<section id="changed"><h2>What changed</h2>'
        + (
            table(("what", "baseline", "candidate"), change_rows([Change(**c) for c in changed]))
            if changed
            else "<p>No environment change.</p>"
        )
        + '</section><section id="figures"><h2>SLA figures, baseline vs candidate</h2>'
        + f"<p>{esc(result['noise'])}</p>"
        + table(JUDGED_HEADER, result["figure_rows"])
        + '</section><section id="drills"><h2>Drills</h2>'
        + (
            table(
                ("drill", "check", "expected", "observed", "verdict"),
                [(*r[:4], state_cell(r[4])) for r in drill_rows(result["drills"])],
                raw_columns=(4,),
            )
            if result["drills"]
            else "<p>No drill was run.</p>"
        )
        + '</section><section id="runs"><h2>Runs</h2><ul>'
        + f"<li>baseline: {_link(result['baseline']['report'], page_dir)} "
        f"({esc(result['baseline']['sla_verdict'])})</li>"
        + f"<li>candidate: {_link(result['candidate']['report'], page_dir)} "
        f"({esc(result['candidate']['sla_verdict'])})</li>"
        + (f"<li>promoted to {esc(result['promoted'])}</li>" if result.get("promoted") else "")
        + "</ul></section>"
    )
    return document(f"ComfyLoad gate: {result['verdict']}", body)


def write_gate(out: Path, result: dict) -> str:
    """gate.json and gate.html in `out`; returns the console head."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "gate.json").write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    (out / "gate.html").write_text(render_gate(result, out), encoding="utf-8")
    return format_head(result) + f"\ngate report: {out / 'gate.html'} (data: {out / 'gate.json'})"
