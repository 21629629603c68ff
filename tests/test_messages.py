"""Unit: folding ComfyUI's websocket/history messages into one PromptResult."""

import json
import re

import pytest
from conftest import REPO
from loopback_http import QuietHandler, serving

from comfyload.common.errors import UserError
from comfyload.common.records import PROMPT_OUTCOMES
from comfyload.protocol.client import parse_completion
from comfyload.protocol.prompt_watch import PromptWatch
from comfyload.protocol.results import PromptResult, server_timings, summarise_validation_error


def new_watch(nodes=("1", "2", "3")):
    return PromptWatch(PromptResult(prompt_id="p", client_id="c", server="s", workflow="w"), list(nodes))


def feed(watch, messages):
    for event, data, t in messages:
        watch.on_message(event, {"prompt_id": "p", **data}, t)


def test_success_records_server_times_per_node_durations_and_outputs():
    w = new_watch()
    feed(
        w,
        [
            ("execution_start", {"timestamp": 1000}, 10.0),
            ("execution_cached", {"nodes": [], "timestamp": 1001}, 10.0),
            ("executing", {"node": "1"}, 10.0),
            ("executing", {"node": "2"}, 10.25),
            ("executing", {"node": "3"}, 11.0),
            (
                "executed",
                {"node": "3", "output": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}},
                11.5,
            ),
            ("execution_success", {"timestamp": 2500}, 11.5),
            ("executing", {"node": None}, 11.6),
        ],
    )
    r = w.result
    assert r.outcome == "success" and w.terminal and w.finished.is_set() and w.history_written.is_set()
    assert w.terminal_ts == 11.5, "done at the terminal message, not at the later `executing` None"
    assert r.execution_start == 1000 and r.execution_end == 2500 and r.execution_ms == 1500
    assert r.node_ms == pytest.approx({"1": 250.0, "2": 750.0, "3": 500.0})
    assert r.outputs == [{"node": "3", "kind": "images", "filename": "a.png", "subfolder": "", "type": "output"}]


def test_all_nodes_from_cache_is_cached_not_a_fast_success():
    w = new_watch(("1", "2"))
    feed(w, [("execution_cached", {"nodes": ["1", "2"]}, 1.0), ("execution_success", {"timestamp": 5}, 1.0)])
    assert w.result.outcome == "cached"


def test_partly_cached_is_success():
    w = new_watch(("1", "2"))
    feed(w, [("execution_cached", {"nodes": ["1"]}, 1.0), ("execution_success", {"timestamp": 5}, 1.0)])
    assert w.result.outcome == "success"


@pytest.mark.parametrize(
    "exception_type,outcome",
    [("RuntimeError", "execution_error"), ("torch.OutOfMemoryError", "oom"), ("torch.cuda.OutOfMemoryError", "oom")],
)
def test_execution_error_classified(exception_type, outcome):
    w = new_watch()
    feed(
        w,
        [
            (
                "execution_error",
                {
                    "node_id": "2",
                    "node_type": "Fault",
                    "exception_type": exception_type,
                    "exception_message": "boom\nmore",
                    "timestamp": 9,
                },
                1.0,
            )
        ],
    )
    assert (w.result.outcome, w.result.error_type, w.result.error_node) == (outcome, exception_type, "2 (Fault)")


def test_interrupted():
    w = new_watch()
    feed(w, [("execution_interrupted", {"node_id": "1", "node_type": "Sleep", "timestamp": 3}, 1.0)])
    assert w.result.outcome == "interrupted" and w.terminal


def test_validation_error_summary_names_the_node():
    body = {
        "error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation"},
        "node_errors": {
            "2": {
                "class_type": "ImageBlur",
                "errors": [
                    {
                        "type": "value_bigger_than_max",
                        "message": "Value bigger than max",
                        "details": "blur_radius: 999 > 31",
                    }
                ],
            }
        },
    }
    kind, message, node = summarise_validation_error(body)
    assert kind == "prompt_outputs_failed_validation"
    assert node == "2 (ImageBlur)" and "node 2 (ImageBlur)" in message and "blur_radius" in message


def test_create_time_from_history_entry():
    entry = {
        "prompt": [1, "p", {}, {"create_time": 123, "client_id": "c"}, []],
        "status": {"messages": [["execution_start", {"timestamp": 130}], ["execution_success", {"timestamp": 190}]]},
    }
    assert server_timings(entry) == {"create_time": 123, "execution_start": 130, "execution_end": 190}
    assert server_timings(None) == {"create_time": None, "execution_start": None, "execution_end": None}


def test_completion_modes():
    assert parse_completion("ws") is None
    assert parse_completion("poll:2") == 2.0
    for bad in ("poll", "poll:x", "poll:0", "sse"):
        with pytest.raises(UserError):
            parse_completion(bad)


def test_record_has_kind_first_and_derived_latencies():
    r = PromptResult(
        prompt_id="p",
        client_id="c",
        server="s",
        workflow="w",
        outcome="success",
        intended_send_ts=100.0,
        done_ts=101.5,
        create_time=100_010,
        execution_start=100_200,
        execution_end=101_400,
        extra={"page": 3},
    )
    record = r.to_record()
    assert list(record)[0] == "kind" and record["kind"] == "prompt"
    assert record["e2e_ms"] == pytest.approx(1500.0)
    assert record["queue_wait_ms"] == 190 and record["execution_ms"] == 1200 and record["page"] == 3


def test_an_outcome_outside_the_record_contract_fails_where_it_is_set():
    """A typo in the client (`"sucess"`) raises at the assignment, so every test that drives that
    code path fails: the contract is held by the code that runs, not by a regex over its text."""
    r = PromptResult(prompt_id="p", client_id="c", server="s", workflow="w")
    for outcome in PROMPT_OUTCOMES:
        r.outcome = outcome
    with pytest.raises(ValueError, match="sucess"):
        r.outcome = "sucess"
    with pytest.raises(ValueError):
        PromptResult(prompt_id="p", client_id="c", server="s", workflow="w", outcome="execution_eror")
    named = re.search(r"outcome\n\((success \|[^)]*)\)", (REPO / "DESIGN.md").read_text()).group(1)
    assert set(PROMPT_OUTCOMES) == set(named.split(" | ")), "the outcomes DESIGN.md names"


@pytest.fixture
def stub_server():
    """A server on a free loopback port that answers POST /prompt with a chosen status."""

    class Handler(QuietHandler):
        status = 400

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps(
                {"error": {"type": "prompt_outputs_failed_validation", "message": "bad"}, "node_errors": {}}
            ).encode()
            self.reply(type(self).status, "application/json", body)

    with serving(Handler) as (server, _):
        yield server, Handler


@pytest.mark.parametrize("status,outcome", [(400, "validation_error"), (500, "execution_error")])
def test_post_refused_by_the_server_gives_its_outcome(stub_server, status, outcome):
    from comfyload.protocol.client import ComfyClient

    server, handler = stub_server
    handler.status = status
    client = ComfyClient(f"http://127.0.0.1:{server.server_address[1]}", completion="poll:1")
    try:
        r = client.run_prompt({"1": {"class_type": "X", "inputs": {}}}, "w", timeout=5)
    finally:
        client.close()
    assert r.outcome == outcome and r.outcome in PROMPT_OUTCOMES


def test_post_that_never_reaches_a_server_is_lost():
    from comfyload.orchestration.server import free_port
    from comfyload.protocol.client import ComfyClient

    client = ComfyClient(f"http://127.0.0.1:{free_port()}", completion="poll:1")
    try:
        r = client.run_prompt({"1": {"class_type": "X", "inputs": {}}}, "w", timeout=1.5)
    finally:
        client.close()
    assert r.outcome == "lost" and r.error_message.startswith("POST /prompt failed")
