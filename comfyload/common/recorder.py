"""The run folder (the contract between harness, probe and reports) and its NDJSON writer."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path

from comfyload.common.paths import REPO
from comfyload.common.records import event

# Where run folders go: runs/ in the checkout, or COMFY_RUNS_DIR (tests point it at a tmp folder).
RUNS_ROOT = Path(os.environ.get("COMFY_RUNS_DIR") or REPO / "runs")
METRICS_FILE = "comfyui_metrics.ndjson"
# Keys whose values never reach a run folder (DESIGN: secrets stay out of records and reports).
SECRET_KEY_PATTERN = re.compile(r"(api[_-]?key|token|secret|password|auth)", re.I)


def new_run_dir(scenario: str, root: Path = RUNS_ROOT) -> Path:
    """runs/<YYYYmmdd-HHMMSS>-<scenario>/, made unique if two runs start in the same second."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", scenario) or "run"
    path = root / f"{stamp}-{safe}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{safe}-{n}"
    path.mkdir(parents=True)
    return path


def redact(value):
    """Copies `value` with every secret-looking key's value replaced."""
    if isinstance(value, dict):
        return {
            k: ("<redacted>" if SECRET_KEY_PATTERN.search(str(k)) and v not in (None, "", False) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


class RunRecorder:
    """Appends one JSON object a line to comfyui_metrics.ndjson, flushed per line so `tail -f`
    works while a run is live."""

    def __init__(self, run_dir):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / METRICS_FILE
        self._file = open(self.path, "a", encoding="utf-8")
        self._lock = threading.Lock()
        self.count = 0

    def write(self, record: dict) -> None:
        line = json.dumps(record, separators=(",", ":"), default=str) + "\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()
            self.count += 1

    def event(self, name: str, ts: float | None = None, **fields) -> None:
        self.write(event(name, ts, **fields))

    def write_meta(self, meta: dict) -> None:
        path = self.run_dir / "meta.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(redact(meta), indent=2, default=str))
        os.replace(tmp, path)

    def close(self) -> None:
        """Flushes; the file stays open, so a prompt that ends after the run stopped (a killed
        user's last record) still lands."""
        with self._lock:
            self._file.flush()


def read_records(run_dir) -> list[dict]:
    """All records of a run; a truncated last line (a run killed mid-write) is skipped."""
    path = Path(run_dir) / METRICS_FILE
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records
