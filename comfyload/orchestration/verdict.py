"""A run's end: its summary and verdict from the records (the report's summary.json, the one
writer), printed, and the exit code every command shares (0 pass, 1 fail, 2 bad input, 3 the
harness failed). `run` ends here, and so does each test of a web UI session (ui_session.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from comfyload.analysis.sla import load_sla
from comfyload.analysis.summary import format_summary, summarise
from comfyload.common.cli_exit import EXIT_USER_ERROR  # every command line's; named here with the others
from comfyload.common.recorder import read_records

EXIT_PASS, EXIT_BREACH, EXIT_HARNESS = 0, 1, 3
__all__ = ["EXIT_PASS", "EXIT_BREACH", "EXIT_USER_ERROR", "EXIT_HARNESS", "finish", "read_drill_verdict"]


def finish(run_dir: Path, sla_path: str, output: str | None) -> int:
    """Summary and verdict from the records (the report's summary.json, the one writer); exit 1
    when the verdict fails (a drill's own verdict, else the SLA), 3 when nothing was recorded."""
    from reports.build import build_after_run, write_summary  # the report builder loads matplotlib: only at the end

    try:
        records = read_records(run_dir)
    except FileNotFoundError:
        print(f"error: the run recorded nothing ({run_dir}); see Locust's messages above", file=sys.stderr)
        return EXIT_HARNESS
    summary = build_after_run(run_dir, sla_path, output)
    if summary is None:  # no report: the verdict still stands, from the same model
        summary = summarise(records, load_sla(sla_path), read_drill_verdict(run_dir))
        write_summary(run_dir, summary, output)
    print(f"\n== ComfyLoad summary ({run_dir}) ==")
    print(format_summary(summary))
    if (run_dir / "report.html").exists():
        print(f"report: {run_dir / 'report.html'}")
    if summary["prompts_submitted"] == 0:
        print("error: no prompt was submitted", file=sys.stderr)
        return EXIT_HARNESS
    return EXIT_PASS if summary["verdict"]["passed"] else EXIT_BREACH


def read_drill_verdict(run_dir: Path) -> dict | None:
    path = Path(run_dir) / "fault_verdict.json"
    return json.loads(path.read_text()) if path.exists() else None
