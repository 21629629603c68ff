"""After `comfyload ui` ends, or when a web UI test stops: every test folder gets its summary and
report (a test cut off by Ctrl-C or SIGTERM gets them now). The harness runs `python -m
comfyload.orchestration.ui_session finish RUN_DIR SLA` as a subprocess, so the Locust process never
imports the report builder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from comfyload.common.recorder import RunRecorder, read_records
from comfyload.common.ui_folders import SESSION_FILE, copy_csvs, read_outcome
from comfyload.orchestration.verdict import finish


def finish_session(session_dir: Path, sla_path: str) -> int:
    """After `python -m comfyload ui` ends: every test it ran has its summary and report (a test
    cut off by Ctrl-C or SIGTERM gets them now). Exit code: the last test's."""
    listed = session_dir / SESSION_FILE
    lines = listed.read_text().splitlines() if listed.exists() else []
    tests = [(Path(line.split("\t")[0]), float(line.split("\t")[1])) for line in lines if "\t" in line]
    if not tests:
        print("[comfyload] no test was started from the web UI", file=sys.stderr)
        return 0
    code = 0
    for run_dir, started in tests:
        if (run_dir / "summary.json").exists():
            outcome = read_outcome(run_dir)
            print(f"[comfyload] {run_dir.name}: SLA verdict {outcome['verdict']}  report {run_dir / 'report.html'}")
            code = 0 if outcome["verdict"] == "PASS" else 1
        else:
            copy_csvs(str(session_dir / "locust"), run_dir, started)
            if not any(r.get("name") == "run.stop" for r in _events(run_dir)):
                RunRecorder(run_dir).event("run.stop", reason="the web UI session ended (Ctrl-C or SIGTERM)")
            code = finish(run_dir, sla_path, None)
    return code


def _events(run_dir: Path) -> list[dict]:
    try:
        return [r for r in read_records(run_dir) if r.get("kind") == "event"]
    except FileNotFoundError:
        return []


def main(argv: list[str]) -> int:
    """`python -m comfyload.orchestration.ui_session finish RUN_DIR SLA`: a test's summary and report."""
    if len(argv) != 3 or argv[0] != "finish":
        print("usage: python -m comfyload.orchestration.ui_session finish RUN_DIR SLA_FILE", file=sys.stderr)
        return 2
    os.environ.setdefault("MPLBACKEND", "Agg")
    return finish(Path(argv[1]), argv[2], None)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
