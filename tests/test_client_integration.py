"""Integration: the client against the real local ComfyUI (no Locust)."""

import random
import threading
import time

import pytest

from comfyload.protocol.client import ComfyClient
from comfyload.protocol.results import server_timings
from comfyload.protocol.server_contract import is_canonical_id
from comfyload.protocol.workload import load_workflow

pytestmark = pytest.mark.integration


def sleep_graph(seconds):
    return {"1": {"class_type": "Sleep", "inputs": {"seconds": seconds}}}


def fault_graph(mode):
    return {"1": {"class_type": "Fault", "inputs": {"mode": mode, "probability": 1.0, "fail_times": 0, "key": ""}}}


@pytest.fixture
def client(comfy):
    records = []
    c = ComfyClient(comfy)
    c.events.prompt_done.add_listener(lambda result: records.append(result))
    c.start()
    c.records = records
    yield c
    c.close()


def test_cpu_smoke_succeeds_with_per_node_timings_and_outputs(client):
    wf = load_workflow("cpu_smoke")
    r = client.run_prompt(wf.parameterise(random.Random()), wf.name, timeout=60, download=True)
    assert r.outcome == "success", r.error_message
    assert set(r.node_ms) == {"1", "2", "3"} and all(ms >= 0 for ms in r.node_ms.values())
    assert r.outputs and r.outputs[0]["filename"].startswith("cpu_smoke")
    assert r.download_ms is not None and r.download_ms > 0
    client.flush()
    assert r.create_time <= r.execution_start <= r.execution_end
    assert r.intended_send_ts <= r.sent_ts <= r.accepted_ts <= r.done_ts
    assert client.records == [r], "exactly one record per prompt"


def test_same_workflow_twice_executes_twice_and_a_repeat_is_detected_as_cached(client):
    wf = load_workflow("cpu_smoke")
    rng = random.Random()
    first, second = (client.run_prompt(wf.parameterise(rng), wf.name, timeout=60) for _ in range(2))
    assert (first.outcome, second.outcome) == ("success", "success")
    assert second.cached_nodes == [] and set(second.node_ms) == {"1", "2", "3"}
    same = wf.parameterise(rng)
    client.run_prompt(same, wf.name, timeout=60)
    repeat = client.run_prompt(same, wf.name, timeout=60)
    assert repeat.outcome == "cached" and sorted(repeat.cached_nodes) == ["1", "2", "3"]


def test_malformed_workflow_is_validation_error_naming_the_node(client):
    graph = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 999, "sigma": 1.0}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "x"}},
    }
    r = client.run_prompt(graph, "bad", timeout=30)
    assert r.outcome == "validation_error"
    assert r.error_node == "2 (ImageBlur)" and "blur_radius" in r.error_message


def test_fault_node_error_and_oom(client):
    error = client.run_prompt(fault_graph("error"), "fault", timeout=30)
    assert (error.outcome, error.error_node) == ("execution_error", "1 (Fault)")
    assert "simulated failure" in error.error_message
    oom = client.run_prompt(fault_graph("oom"), "fault", timeout=30)
    assert oom.outcome == "oom" and "OutOfMemoryError" in oom.error_type


def test_the_contract_is_learned_once_and_ids_are_kept_verbatim(client):
    """The pinned 0.3.75 has no /api/jobs: the client keeps to /history and /interrupt there. The id we
    send is the server's key (server.py: history and websocket messages use it verbatim)."""
    contract = client.contract
    assert contract.version == "0.3.75" and contract.jobs_api is False and client.contract is contract
    r = client.run_prompt(sleep_graph(0.05), "sleep", timeout=30)
    assert r.outcome == "success" and is_canonical_id(r.prompt_id)
    assert list(client.get_json(f"/history/{r.prompt_id}")) == [r.prompt_id]


def history_timings(client, prompt_id):
    """The server's own epoch-ms stamps for one prompt, from its /history entry."""
    return server_timings(client.get_json(f"/history/{prompt_id}").get(prompt_id))


def test_sleep_latency_is_the_servers_own_span(client):
    """The figures are the server's stamps, not this machine's speed: execution = execution_end -
    execution_start and queue wait = execution_start - create_time exactly, as /history holds
    them; a 1 s Sleep cannot run in under 1 s on the server's clock; end to end (client clock)
    contains the server's whole span (ms stamps are truncated: 2 ms of rounding)."""
    r = client.run_prompt(sleep_graph(1.0), "sleep", timeout=30)
    client.flush()
    assert r.outcome == "success"
    server = history_timings(client, r.prompt_id)
    assert (r.create_time, r.execution_start, r.execution_end) == (
        server["create_time"],
        server["execution_start"],
        server["execution_end"],
    )
    assert r.execution_ms == server["execution_end"] - server["execution_start"] >= 1000
    assert r.queue_wait_ms == server["execution_start"] - server["create_time"] >= 0
    assert r.e2e_ms >= server["execution_end"] - server["create_time"] - 2
    assert set(r.node_ms) == {"1"} and 0 < r.node_ms["1"] <= r.e2e_ms


def test_timeout_is_recorded_and_the_prompt_leaves_the_queue(client):
    """A 3-s Sleep given 1 s: the client gives up at its deadline (client clock, a lower bound)
    and takes the prompt off the server. Whether it stopped early is read from the server, not
    from a stopwatch: its history ends in execution_interrupted (or it has none: deleted while
    still queued), never execution_success."""
    r = client.run_prompt(sleep_graph(3.0), "sleep", timeout=1.0)
    assert r.outcome == "timeout" and r.e2e_ms >= 1000
    deadline = time.monotonic() + 60  # a hang guard only: an uninterrupted Sleep ends in 3 s anyway
    while time.monotonic() < deadline:
        queue = client.get_json("/queue")
        if not queue["queue_running"] and not queue["queue_pending"]:
            break
        time.sleep(0.05)
    assert not queue["queue_running"] and not queue["queue_pending"], queue
    entry = client.get_json(f"/history/{r.prompt_id}").get(r.prompt_id)
    ends = [
        kind for kind, _ in ((entry or {}).get("status") or {}).get("messages", []) if kind.startswith("execution_")
    ]
    assert entry is None or ends[-1] == "execution_interrupted", ends
    assert "execution_success" not in ends, "the interrupt stopped the Sleep early"


def drop_socket_while_running(client):
    """Drops the websocket once the server runs the next prompt submitted (not after a fixed
    delay: on a busy machine the prompt may not have started, or may be done, by then)."""
    submitted = []
    client.events.prompt_submitted.add_listener(lambda result: submitted.append(result.prompt_id))

    def watch():
        deadline = time.monotonic() + 60  # a hang guard only
        while time.monotonic() < deadline:
            running = client.get_json("/queue")["queue_running"] if submitted else []
            if any(len(item) > 1 and item[1] == submitted[0] for item in running):
                client.drop_socket()
                return
            time.sleep(0.02)

    threading.Thread(target=watch, daemon=True).start()


def test_websocket_dropped_mid_prompt_is_reconciled_from_history(client):
    old_id = client.client_id
    drop_socket_while_running(client)
    r = client.run_prompt(sleep_graph(1.5), "sleep", timeout=30)
    assert r.outcome == "success" and r.completion == "history"
    client.flush()
    assert r.execution_ms >= 1500 and r.create_time is not None
    assert client.client_id != old_id and client.reconnects == 1
    assert [x.prompt_id for x in client.records] == [r.prompt_id], "one record, counted once"
    after = client.run_prompt(sleep_graph(0.1), "sleep", timeout=30)
    assert after.outcome == "success" and after.completion == "ws", "the new socket carries later prompts"


def test_poll_completion_mode(comfy):
    c = ComfyClient(comfy, completion="poll:0.2").start()
    try:
        r = c.run_prompt(sleep_graph(0.5), "sleep", timeout=30)
    finally:
        c.close()
    assert r.outcome == "success" and r.completion == "poll"
    assert r.execution_ms >= 500 and r.e2e_ms >= 500
    assert not r.node_ms, "polling cannot see per-node transitions"


def test_a_server_down_when_the_client_starts_fails_its_prompts_then_is_reached(comfy):
    """A crash drill can kill the server between preflight and the users' start: the client must
    not raise there (the users would die without a record), its prompts meanwhile end `lost`, and
    once the server answers the socket opens and prompts succeed. The server is reached through the
    suite's TCP proxy, started on the chosen port only after the client."""
    from comfyload.orchestration.faultproxy import FaultProxy
    from comfyload.orchestration.server import free_port

    port = free_port()
    c = ComfyClient(f"http://127.0.0.1:{port}")
    c.submit_retry_s = 1.0
    proxy = None
    try:
        c.start()  # nothing listens yet: no exception
        lost = c.run_prompt(sleep_graph(0.05), "sleep", timeout=30)
        assert lost.outcome == "lost" and "POST /prompt failed" in lost.error_message
        proxy = FaultProxy(comfy, listen_port=port).start()
        assert c._connected.wait(60), "the receiver opened the socket once the server answered"
        ok = c.run_prompt(sleep_graph(0.05), "sleep", timeout=30)
        assert ok.outcome == "success" and ok.completion == "ws"
    finally:
        c.close()
        if proxy is not None:
            proxy.stop()
