"""Unit: fleet routing, rotation, host lists, --jobs split (no Locust in this process)."""

from types import SimpleNamespace

import pytest

from comfyload.common.errors import UserError
from comfyload.common.hooks import Events
from comfyload.protocol.fleet import Fleet, parse_hosts


def fake(server, queue=0):
    """A client as the fleet sees it: a server, its events, close()."""
    events = Events("prompt_submitted", "prompt_finished", "prompt_done", "connection_changed", "status_broadcast")
    return SimpleNamespace(server=server, queue_remaining=queue, close=lambda: None, events=events)


def result(server, outcome):
    return SimpleNamespace(server=server, outcome=outcome)


def test_round_robin_alternates():
    fleet = Fleet([fake("a"), fake("b")], "round_robin", probe_s=3600)
    assert [fleet.pick().server for _ in range(4)] == ["a", "b", "a", "b"]


def test_least_queue_routes_on_our_exact_in_flight_plus_others_load():
    a, b = fake("a"), fake("b")
    fleet = Fleet([a, b], "least_queue", probe_s=3600)
    picks = [fleet.pick().server for _ in range(4)]
    assert sorted(picks) == ["a", "a", "b", "b"], "4 users on 2 idle servers: 2 and 2"
    # a stale broadcast (b still shows 3 queued after one of ours finished there) adds no load:
    # 3 queued - our 2 at that moment = 1 from others in one estimate, 0 in the one before
    fleet.status_seen("b", 3)
    fleet.observe(result("b", "success"))
    assert fleet.pick().server == "b", "b has 1 of ours in flight, a has 2"
    # someone else keeps 5 prompts queued on a (two broadcasts agree): a is the longer queue
    fleet.status_seen("a", 7)
    fleet.status_seen("a", 7)
    fleet.observe(result("b", "success"))
    fleet.observe(result("b", "success"))
    assert fleet.in_flight == {"a": 2, "b": 0}
    assert fleet.pick().server == "b"
    fleet.pick()
    assert fleet.pick().server == "b", "a: 2 ours + 5 others; b: 2 ours"


def test_sticky_keeps_a_book_on_its_server_until_it_leaves_rotation():
    fleet = Fleet([fake("a"), fake("b")], "sticky", probe_s=3600)
    first = fleet.pick("book-1").server
    assert all(fleet.pick("book-1").server == first for _ in range(5))
    fleet.connection_changed("down", first)
    assert fleet.pick("book-1").server != first


def test_a_server_leaves_rotation_after_consecutive_losses_only():
    events = []
    fleet = Fleet([fake("a"), fake("b")], "round_robin", max_failures=3, probe_s=3600, emit=events.append)
    for outcome in ("lost", "lost", "success", "lost", "lost"):
        fleet.observe(result("b", outcome))
    assert fleet.out == set(), "a success in between resets the count"
    fleet.observe(result("b", "lost"))
    assert fleet.out == {"b"} and events[0]["name"] == "fleet.server_out"
    assert {fleet.pick().server for _ in range(4)} == {"a"}


def test_parse_hosts(tmp_path):
    assert parse_hosts("a:8188, http://b:8188/") == ["http://a:8188", "http://b:8188"]
    f = tmp_path / "hosts"
    f.write_text("# gpu farm\nhttp://g1:8188\n\ng2:8188  # spare\n")
    assert parse_hosts(str(f)) == ["http://g1:8188", "http://g2:8188"]
    with pytest.raises(UserError, match="twice"):
        parse_hosts("a:1,a:1")
    with pytest.raises(UserError, match="--route"):
        Fleet([fake("a")], "random")


@pytest.mark.parametrize(
    "total,workers,shares", [(20, 2, [10, 10]), (7, 3, [3, 2, 2]), (0, 4, [0, 0, 0, 0]), (5, 1, [5])]
)
def test_jobs_are_split_so_every_job_is_someones(total, workers, shares):
    import subprocess
    import sys

    code = (
        "from comfyload.harness.distributed import jobs_share;"
        f"print([jobs_share({total}, i, {workers}) for i in range({workers})])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(shares)


def test_server_balance_sees_in_flight_and_latency_not_only_completions():
    from comfyload.analysis.fleet_figures import format_balance, server_balance

    def p(server, start, end):
        return {
            "server": server,
            "sent_ts": start,
            "intended_send_ts": start,
            "done_ts": end,
            "outcome": "success",
            "e2e_ms": (end - start) * 1000,
        }

    # 10 s: server a holds 3 prompts all the time (each 1.5 s), b holds 1 (each 0.5 s);
    # completions 18 vs 20 look even
    a = [p("a", t, t + 1.5) for k in range(3) for t in [k * 0.5 + 1.5 * i for i in range(6)]][:20]
    b = [p("b", 0.5 * i, 0.5 * i + 0.5) for i in range(20)]
    bal = server_balance(a + b)
    assert bal["by_server"]["b"]["mean_in_flight"] == pytest.approx(1.0)
    assert bal["by_server"]["b"]["max_in_flight"] == 1
    assert bal["by_server"]["a"]["max_in_flight"] == 3
    assert bal["latency_imbalance"] == pytest.approx(3.0)
    assert bal["in_flight_imbalance"] > 1.4
    assert "p50 3.00 (slowest / fastest)" in format_balance(bal)[-1]
    assert server_balance(b) is None


def test_the_fleet_hears_its_clients_through_their_events():
    a, b = fake("a"), fake("b")
    fleet = Fleet([a, b], "least_queue", max_failures=2, probe_s=3600)
    assert fleet.pick().server == "a" and fleet.in_flight["a"] == 1
    a.events.prompt_done.fire(result=result("a", "success"))
    assert fleet.in_flight["a"] == 1, "a complete record is not the moment the slot frees"
    a.events.prompt_finished.fire(result=result("a", "success"))
    assert fleet.in_flight["a"] == 0, "prompt_finished reached Fleet.observe"
    b.events.connection_changed.fire(state="down", server="b")
    assert "b" in fleet.out, "connection_changed reached the fleet"
