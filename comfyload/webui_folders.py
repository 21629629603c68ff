"""A web UI test's run folder, without Locust (the `python -m comfyload ui` wrapper reads these
after Locust exits): its verdict, its share of Locust's CSVs, and finishing the folders of a
session whose last test was cut off by Ctrl-C or SIGTERM."""
from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

from comfyload.recorder import RunRecorder, read_records

SESSION_FILE = "ui_tests.txt"   # in the wrapper's folder: "run folder<TAB>start time" a line
CSV_PARTS = ("stats", "failures", "exceptions")


def read_outcome(run_dir: Path) -> dict:
    """The verdict a finished test folder holds (summary.json), for the UI."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())["summary"]
    except (OSError, ValueError, KeyError):
        return {"verdict": None, "sla": [], "report": None}
    return {"verdict": "PASS" if summary.get("sla_pass") else "FAIL", "breached": summary.get("breached", []),
            "sla": summary.get("sla", []), "report": "report.html" if (run_dir / "report.html").exists() else None}


def copy_csvs(prefix: str | None, run_dir: Path, started: float) -> None:
    """This test's part of Locust's CSVs: the stats files as they stand (Locust clears them when a
    test starts) and the history rows since this test began."""
    if not prefix or Path(prefix).parent.resolve() == run_dir.resolve():
        return
    for part in CSV_PARTS:
        src = Path(f"{prefix}_{part}.csv")
        if src.exists():
            (run_dir / f"locust_{part}.csv").write_bytes(src.read_bytes())
    history = Path(f"{prefix}_stats_history.csv")
    if history.exists():
        with open(history, newline="", encoding="utf-8") as f, \
                open(run_dir / "locust_stats_history.csv", "w", newline="", encoding="utf-8") as out:
            rows = csv.reader(f)
            writer = csv.writer(out)
            header = next(rows, None)
            if header is None:
                return
            writer.writerow(header)
            writer.writerows(r for r in rows if r and r[0] != header[0] and r[0].isdigit() and int(r[0]) >= int(started))


def finish_session(session_dir: Path, sla_path: str, finish) -> int:
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
    """`python -m comfyload.webui_folders finish RUN_DIR SLA`: a test's summary and report."""
    if len(argv) != 3 or argv[0] != "finish":
        print("usage: python -m comfyload.webui_folders finish RUN_DIR SLA_FILE", file=sys.stderr)
        return 2
    from comfyload.cli import finish
    os.environ.setdefault("MPLBACKEND", "Agg")
    return finish(Path(argv[1]), argv[2], None)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
