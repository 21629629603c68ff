"""Unit: folding ComfyUI's websocket/history messages into one PromptResult."""
import pytest

from comfyload.common.errors import UserError
from comfyload.protocol.client import _Watch, create_time_of, parse_completion
from comfyload.protocol.results import OUTCOMES, PromptResult, summarise_validation_error


def new_watch(nodes=("1", "2", "3")):
    return _Watch(PromptResult(prompt_id="p", client_id="c", server="s", workflow="w"), list(nodes))


def feed(watch, messages):
    for event, data, t in messages:
        watch.on_message(event, {"prompt_id": "p", **data}, t)


def test_success_records_server_times_per_node_durations_and_outputs():
    w = new_watch()
    feed(w, [("execution_start", {"timestamp": 1000}, 10.0),
             ("execution_cached", {"nodes": [], "timestamp": 1001}, 10.0),
             ("executing", {"node": "1"}, 10.0),
             ("executing", {"node": "2"}, 10.25),
             ("executing", {"node": "3"}, 11.0),
             ("executed", {"node": "3", "output": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}}, 11.5),
             ("execution_success", {"timestamp": 2500}, 11.5),
             ("executing", {"node": None}, 11.6)])
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


@pytest.mark.parametrize("exception_type,outcome", [("RuntimeError", "execution_error"),
                                                    ("torch.OutOfMemoryError", "oom"),
                                                    ("torch.cuda.OutOfMemoryError", "oom")])
def test_execution_error_classified(exception_type, outcome):
    w = new_watch()
    feed(w, [("execution_error", {"node_id": "2", "node_type": "Fault", "exception_type": exception_type,
                                  "exception_message": "boom\nmore", "timestamp": 9}, 1.0)])
    assert (w.result.outcome, w.result.error_type, w.result.error_node) == (outcome, exception_type, "2 (Fault)")


def test_interrupted():
    w = new_watch()
    feed(w, [("execution_interrupted", {"node_id": "1", "node_type": "Sleep", "timestamp": 3}, 1.0)])
    assert w.result.outcome == "interrupted" and w.terminal


def test_validation_error_summary_names_the_node():
    body = {"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation"},
            "node_errors": {"2": {"class_type": "ImageBlur", "errors": [
                {"type": "value_bigger_than_max", "message": "Value bigger than max", "details": "blur_radius: 999 > 31"}]}}}
    kind, message, node = summarise_validation_error(body)
    assert kind == "prompt_outputs_failed_validation"
    assert node == "2 (ImageBlur)" and "node 2 (ImageBlur)" in message and "blur_radius" in message


def test_create_time_from_history_entry():
    assert create_time_of({"prompt": [1, "p", {}, {"create_time": 123, "client_id": "c"}, []]}) == 123
    assert create_time_of(None) is None


def test_completion_modes():
    assert parse_completion("ws") is None
    assert parse_completion("poll:2") == 2.0
    for bad in ("poll", "poll:x", "poll:0", "sse"):
        with pytest.raises(UserError):
            parse_completion(bad)


def test_record_has_kind_first_and_derived_latencies():
    r = PromptResult(prompt_id="p", client_id="c", server="s", workflow="w", outcome="success",
                     intended_send_ts=100.0, done_ts=101.5, create_time=100_010, execution_start=100_200,
                     execution_end=101_400, extra={"page": 3})
    record = r.to_record()
    assert list(record)[0] == "kind" and record["kind"] == "prompt"
    assert record["e2e_ms"] == pytest.approx(1500.0)
    assert record["queue_wait_ms"] == 190 and record["execution_ms"] == 1200 and record["page"] == 3


def test_every_outcome_the_client_can_give_is_in_the_record_contract():
    import inspect

    from comfyload.protocol import client, results
    source = inspect.getsource(client) + inspect.getsource(results)
    given = set(__import__("re").findall(r'outcome(?:, result\.error_type)? = "([a-z_]+)"', source))
    given |= set(__import__("re").findall(r'result\.outcome = "([a-z_]+)" if', source))
    assert given and given <= set(OUTCOMES), given - set(OUTCOMES)
    assert set(OUTCOMES) == {"success", "validation_error", "execution_error", "oom", "interrupted", "timeout", "lost",
                             "cached", "cut_off"}, "the outcomes DESIGN.md names"
