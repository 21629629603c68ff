"""Unit: the record vocabulary (comfyload/common/records.py) is the one list of event names: every
event the code writes or looks for is in its catalogue, the builder refuses a name outside it, and
the reports check a record's fields against the kinds it declares."""

import ast
from pathlib import Path

import pytest

from comfyload.common.errors import UserError
from comfyload.common.records import EVENT_NAMES, RECORD_KINDS, by_kind, event
from reports.record_types import check_record

REPO = Path(__file__).resolve().parent.parent
SOURCES = sorted(p for d in ("comfyload", "reports", "bench") for p in (REPO / d).rglob("*.py")) + [
    REPO / "locustfile.py"
]


def _text(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _is_name_get(node) -> bool:
    """r.get("name") or r["name"]"""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        return bool(node.args) and _text(node.args[0]) == "name"
    return isinstance(node, ast.Subscript) and _text(node.slice) == "name"


def event_names_in(path: Path):
    """(line, name) of every event name written (event(...), .event(...), a {"kind": "event"}
    dict) or compared with a record's name."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if called == "event" and _text(node.args[0]) is not None:
                yield node.lineno, _text(node.args[0])
        elif isinstance(node, ast.Dict):
            fields = {_text(k): v for k, v in zip(node.keys, node.values) if k is not None}
            if "kind" in fields and _text(fields["kind"]) == "event" and _text(fields.get("name")) is not None:
                yield node.lineno, _text(fields["name"])
        elif isinstance(node, ast.Compare) and _is_name_get(node.left):
            for right in node.comparators:
                names = right.elts if isinstance(right, (ast.Tuple, ast.List, ast.Set)) else [right]
                for name in names:
                    if _text(name) is not None:
                        yield node.lineno, _text(name)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_event_the_code_names_is_in_the_catalogue(path):
    unknown = [f"{path.relative_to(REPO)}:{line}: {name}" for line, name in event_names_in(path)]
    assert not [u for u in unknown if u.rsplit(": ", 1)[1] not in EVENT_NAMES]


def test_the_scan_sees_writers_and_readers():
    probe = REPO / "tests" / "_event_probe_for_test.py"
    probe.write_text(
        'event("a.one")\nrec.event("a.two", x=1)\nd = {"kind": "event", "name": "a.three"}\n'
        'r.get("name") == "a.four"\nr["name"] in ("a.five", "a.six")\n'
    )
    try:
        found = [name for _, name in event_names_in(probe)]
    finally:
        probe.unlink()
    assert sorted(found) == ["a.five", "a.four", "a.one", "a.six", "a.three", "a.two"]


def test_the_builder_writes_kind_first_and_refuses_a_name_outside_the_catalogue():
    record = event("outage.start", 12.5, server="s", cause="c")
    assert list(record) == ["kind", "name", "ts", "server", "cause"] and record["ts"] == 12.5
    with pytest.raises(ValueError, match="record vocabulary"):
        event("outage.strat")


def test_reports_check_the_fields_each_kind_declares():
    for kind, required in RECORD_KINDS.items():
        for missing in required:
            record = {"kind": kind, "ts": 1.0, "intended_send_ts": 1.0, "start_ts": 1.0, "outcome": "success"}
            record["name"] = "test.start"
            del record[missing]
            with pytest.raises(UserError, match=f"a {kind} record without {missing}"):
                check_record(record, "run/comfyui_metrics.ndjson", 3)


def test_by_kind_groups_once_and_passes_a_grouping_through():
    records = [{"kind": "prompt", "n": 1}, {"kind": "event", "name": "audit"}, {"kind": "prompt", "n": 2}]
    kinds = by_kind(records)
    assert [r["n"] for r in kinds["prompt"]] == [1, 2] and by_kind(kinds) is kinds
