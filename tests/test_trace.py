"""Trace replay: what a trace file holds, read back (a run's records or a plain arrival log)."""

import json

import pytest

from comfyload.common.errors import UserError
from comfyload.workloads.trace import load_trace


def write(tmp_path, rows, name="trace.ndjson"):
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return str(path)


def test_plain_log_offsets_kinds_and_speed(tmp_path):
    path = write(
        tmp_path, [{"ts": 1000.5, "workflow": "sleep1"}, {"ts": 1000.0, "profile": "sleep_pages"}, {"ts": 1003.0}]
    )
    model = load_trace(path)
    assert [(a.offset_s, a.workflow, a.profile) for a in model.arrivals_list] == [
        (0.0, None, "sleep_pages"),
        (0.5, "sleep1", None),
        (3.0, None, None),
    ]
    assert [g for g, _ in load_trace(path, speed=2).arrivals(None)] == [0.0, 0.25, 1.25]
    assert model.workflows == ["sleep1"] and model.profiles == ["sleep_pages"]


def test_run_records_prompt_run_keeps_first_attempts_only(tmp_path):
    rows = [
        {"kind": "event", "name": "test.start", "ts": 1},
        {"kind": "prompt", "intended_send_ts": 10.0, "workflow": "a", "attempt": 1},
        {"kind": "prompt", "intended_send_ts": 10.2, "workflow": "b", "attempt": 1},
        {"kind": "prompt", "intended_send_ts": 11.0, "workflow": "a", "attempt": 2},
        {"kind": "gpu", "ts": 10.5},
    ]
    model = load_trace(write(tmp_path, rows))
    assert [(round(a.offset_s, 6), a.workflow) for a in model.arrivals_list] == [(0.0, "a"), (0.2, "b")]


def test_run_records_book_run_replays_books(tmp_path):
    rows = [
        {"kind": "prompt", "intended_send_ts": 5.0, "workflow": "w", "book_id": "x"},
        {"kind": "book", "start_ts": 5.0, "profile": "small"},
        {"kind": "book", "start_ts": 7.5, "profile": "large"},
    ]
    model = load_trace(write(tmp_path, rows))
    assert [(a.offset_s, a.profile) for a in model.arrivals_list] == [(0.0, "small"), (2.5, "large")]


@pytest.mark.parametrize(
    "rows,text",
    [
        (['{"ts": 1,'], "line 1 is not JSON"),
        ([{"workflow": "a"}], "needs a numeric `ts`"),
        ([{"ts": 1, "workflow": "a", "profile": "b"}], "both a workflow and a profile"),
        ([{"kind": "event", "name": "x"}], "no arrivals"),
    ],
)
def test_bad_trace_is_one_clear_error(tmp_path, rows, text):
    with pytest.raises(UserError, match=text):
        load_trace(write(tmp_path, rows))


def test_missing_file_and_bad_speed(tmp_path):
    with pytest.raises(UserError, match="No such file"):
        load_trace(str(tmp_path / "nope.ndjson"))
    with pytest.raises(UserError, match="--trace-speed"):
        load_trace(write(tmp_path, [{"ts": 1}]), speed=0)
