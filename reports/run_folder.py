"""Reads a run folder (DESIGN.md: the contract between harness, probe and reports). Every
problem with a file is one UserError that names the file; nothing here draws or judges."""

from __future__ import annotations

import gc
import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pandas as pd

from comfyload.common.errors import UserError
from comfyload.common.recorder import METRICS_FILE
from reports.nodes import NodeTimes
from reports.record_types import check_record

LOCUST_CSVS = {  # file -> columns the reports rely on
    "locust_stats.csv": ("Type", "Name", "Request Count", "Failure Count"),
    "locust_stats_history.csv": ("Timestamp", "User Count", "Name", "Requests/s", "Total Request Count"),
    "locust_failures.csv": ("Method", "Name", "Error", "Occurrences"),
    "locust_exceptions.csv": ("Count", "Message"),
}
# Prompt fields no report figure reads once the node table has them (node_ms and node_classes are
# folded into NodeTimes while reading): each prompt record is rebuilt without them as its line is
# read. A 24-hour soak holds a million prompts, and every figure passes over them: without these
# fields a record is 16 keys (a 464-byte dict instead of 1,168), a pass reading several fields of
# each is about twice as fast, and there is less memory to fill and to free. A figure that needs
# one of them takes it out of this list.
UNREAD_PROMPT_KEYS = frozenset(
    (
        "node_ms",
        "node_classes",
        "cached_nodes",
        "outputs",
        "client_id",
        "completion",
        "sent_ts",
        "accepted_ts",
        "create_time",
        "execution_start",
        "execution_end",
    )
)


@dataclass
class RunFolder:
    path: Path
    meta: dict
    records: list[dict]
    kinds: dict[str, list[dict]]  # the same records grouped by `kind` (comfyload.common.records.by_kind's shape)
    history: pd.DataFrame  # locust_stats_history.csv, the Aggregated rows
    stats: pd.DataFrame
    failures: pd.DataFrame
    exceptions: pd.DataFrame
    nodes: NodeTimes
    notes: list[str] = field(default_factory=list)  # what the reader tolerated, said in the report

    @property
    def run_id(self) -> str:
        return self.path.name

    def of_kind(self, kind: str) -> list[dict]:
        return self.kinds.get(kind, [])


def require_file(path: Path) -> Path:
    if not path.is_file():
        raise UserError(f"{path}: missing from the run folder")
    return path


def read_meta(run_dir: Path) -> dict:
    path = require_file(run_dir / "meta.json")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise UserError(f"{path}: truncated or not JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise UserError(f"{path}: expected a JSON object")
    return meta


def read_locust_csv(run_dir: Path, name: str) -> pd.DataFrame:
    path = require_file(run_dir / name)
    text = path.read_bytes()
    if not text.endswith(b"\n"):
        raise UserError(f"{path}: truncated (the last line is cut off)")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: truncated or not a Locust CSV ({str(exc).splitlines()[0]})") from None
    missing = [c for c in LOCUST_CSVS[name] if c not in frame.columns]
    if missing:
        raise UserError(f"{path}: truncated or not a Locust CSV (no column {', '.join(missing)})")
    return frame


def read_metrics(run_dir: Path, nodes: NodeTimes, notes: list[str]) -> tuple[list[dict], dict[str, list[dict]]]:
    """The records of comfyui_metrics.ndjson, and the same records grouped by `kind`. A cut last
    line (a run killed mid-write) is skipped and noted, as comfyload.common.recorder.read_records does;
    any other bad line is an error. A 24-hour soak is ~800 MB: lines are read one at a time
    (never the whole file at once) and parsed by orjson; a prompt's node times are folded into
    `nodes` and its record kept without UNREAD_PROMPT_KEYS."""
    path = require_file(run_dir / METRICS_FILE)
    records, kinds, loads, unread = [], defaultdict(list), orjson.loads, UNREAD_PROMPT_KEYS
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a million small dicts: the cyclic GC would otherwise rescan them over and over
    try:
        with open(path, "rb") as f:
            for number, line in enumerate(f, 1):
                if line == b"\n":
                    continue
                try:
                    record = loads(line)
                except orjson.JSONDecodeError:
                    if not line.endswith(b"\n"):  # the last line, cut off
                        notes.append(
                            f"{METRICS_FILE}: the last line was cut off (a run killed mid-write) and was skipped"
                        )
                        continue
                    raise UserError(f"{path}: line {number} is not JSON (truncated or corrupt file)") from None
                if not isinstance(record, dict) or "kind" not in record:
                    raise UserError(f"{path}: line {number} is not a record (no `kind`)")
                check_record(record, path, number)
                kind = record["kind"]
                if kind == "prompt":
                    nodes.add(record)
                    record = {key: value for key, value in record.items() if key not in unread}
                records.append(record)
                kinds[kind].append(record)
    finally:
        if gc_was_enabled:
            gc.enable()
    if not records:
        raise UserError(f"{path}: no records (empty or truncated file)")
    return records, dict(kinds)


def load_run(run_dir) -> RunFolder:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run folder not found: {run_dir}")
    meta = read_meta(run_dir)
    frames = {name: read_locust_csv(run_dir, name) for name in LOCUST_CSVS}
    history = frames["locust_stats_history.csv"]
    history = history[history["Name"] == "Aggregated"].reset_index(drop=True)
    nodes, notes = NodeTimes(), []
    records, kinds = read_metrics(run_dir, nodes, notes)
    return RunFolder(
        path=run_dir,
        meta=meta,
        records=records,
        kinds=kinds,
        history=history,
        stats=frames["locust_stats.csv"],
        failures=frames["locust_failures.csv"],
        exceptions=frames["locust_exceptions.csv"],
        nodes=nodes,
        notes=notes,
    )
