"""The types of the record fields the reports compute with, and the fields each kind of record
carries (the record vocabulary, comfyload/common/records.py). A run folder is input like any other
(edited by hand, written by another version, damaged): a wrongly typed field is one line naming
the file, the line and the field, not a TypeError from deep inside pandas."""

from __future__ import annotations

from comfyload.common.errors import UserError
from comfyload.common.records import RECORD_KINDS

# Numbers (JSON int or float; null allowed where the field may be unknown).
NUMBERS = (
    "done_ts",
    "sent_ts",
    "accepted_ts",
    "download_ms",
    "e2e_ms",
    "queue_wait_ms",
    "execution_ms",
    "create_time",
    "execution_start",
    "execution_end",
    "attempt",
    "retry_count",
    "start_ts",
    "end_ts",
    "last_attempted_at",
    "recovery_s",
    "pages",
)
NUMBERS_NOT_NULL = ("ts", "intended_send_ts")
TEXT = ("kind", "outcome", "prompt_id", "worker", "server", "workflow", "client_id", "name")
TEXT_OR_NULL = ("error_type", "error_message", "error_node", "completion")
MAPPINGS = ("node_ms", "node_classes")
LISTS = ("cached_nodes", "outputs")
_NUMBER = (int, float)


def _what(value) -> str:
    return "null" if value is None else type(value).__name__


def wrong_field(record: dict) -> str | None:
    """ "field: expected X, found Y" for the first wrongly typed field, or None."""
    get = record.get
    kind = record.get("kind")
    if kind.__class__ is not str:
        return f"kind: expected text, found {_what(kind)} {kind!r:.40}"
    for key in RECORD_KINDS.get(kind, ()):
        if key not in record:
            return f"a {kind} record without {key}"
    for key in NUMBERS:
        v = get(key)
        if v is not None and (v.__class__ not in _NUMBER):
            return f"{key}: expected a number or null, found {_what(v)} {v!r:.40}"
    for key in NUMBERS_NOT_NULL:
        if key in record and record[key].__class__ not in _NUMBER:
            return f"{key}: expected a number, found {_what(record[key])} {record[key]!r:.40}"
    for key in TEXT:
        if key in record and record[key].__class__ is not str:
            return f"{key}: expected text, found {_what(record[key])} {record[key]!r:.40}"
    for key in TEXT_OR_NULL:
        v = get(key)
        if v is not None and v.__class__ is not str:
            return f"{key}: expected text or null, found {_what(v)} {v!r:.40}"
    for key in MAPPINGS:
        v = get(key)
        if v is not None and (
            v.__class__ is not dict
            or any(x.__class__ not in _NUMBER and x.__class__ is not str and x is not None for x in v.values())
        ):
            return f"{key}: expected an object of node -> value, found {_what(v)} {v!r:.40}"
    for key in LISTS:
        v = get(key)
        if v is not None and v.__class__ is not list:
            return f"{key}: expected a list, found {_what(v)} {v!r:.40}"
    return None


def check_record(record: dict, path, number: int) -> None:
    problem = wrong_field(record)
    if problem is not None:
        raise UserError(f"{path}: line {number}: {problem} (a damaged or hand-edited record)")
