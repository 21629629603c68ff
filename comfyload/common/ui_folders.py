"""A web UI test's run folder, read without Locust: its verdict (summary.json) and its share of
Locust's CSVs. Finishing a session's folders is orchestration/ui_session.py."""

from __future__ import annotations

import csv
import json
from pathlib import Path

SESSION_FILE = "ui_tests.txt"  # in the wrapper's folder: "run folder<TAB>start time" a line
CSV_PARTS = ("stats", "failures", "exceptions")


def read_outcome(run_dir: Path) -> dict:
    """The verdict a finished test folder holds (summary.json), for the UI."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())["summary"]
    except (OSError, ValueError, KeyError):
        return {"verdict": None, "sla": [], "report": None}
    return {
        "verdict": "PASS" if summary.get("sla_pass") else "FAIL",
        "breached": summary.get("breached", []),
        "sla": summary.get("sla", []),
        "report": "report.html" if (run_dir / "report.html").exists() else None,
    }


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
        with (
            open(history, newline="", encoding="utf-8") as f,
            open(run_dir / "locust_stats_history.csv", "w", newline="", encoding="utf-8") as out,
        ):
            rows = csv.reader(f)
            writer = csv.writer(out)
            header = next(rows, None)
            if header is None:
                return
            writer.writerow(header)
            writer.writerows(
                r for r in rows if r and r[0] != header[0] and r[0].isdigit() and int(r[0]) >= int(started)
            )
