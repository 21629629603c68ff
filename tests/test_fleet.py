"""Unit: fleet routing, rotation, host lists, --jobs split (no Locust in this process)."""
from types import SimpleNamespace

import pytest

from comfyload.common.errors import UserError
from comfyload.protocol.fleet import Fleet, parse_hosts


def fake(server, queue=0):
    return SimpleNamespace(server=server, queue_remaining=queue, close=lambda: None)


def result(server, outcome):
    return SimpleNamespace(server=server, outcome=outcome)


def test_round_robin_alternates():
    fleet = Fleet([fake("a"), fake("b")], "round_robin", probe_s=3600)
    assert [fleet.pick().server for _ in range(4)] == ["a", "b", "a", "b"]


def test_least_queue_prefers_the_shorter_queue_and_counts_our_own_in_flight():
    a, b = fake("a", queue=5), fake("b", queue=1)
    fleet = Fleet([a, b], "least_queue", probe_s=3600)
    assert fleet.pick().server == "b"
    b.queue_remaining = 9
    assert fleet.pick().server == "a"


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


@pytest.mark.parametrize("total,workers,shares", [(20, 2, [10, 10]), (7, 3, [3, 2, 2]), (0, 4, [0, 0, 0, 0]), (5, 1, [5])])
def test_jobs_are_split_so_every_job_is_someones(total, workers, shares):
    import subprocess
    import sys
    code = ("from comfyload.harness.distributed import jobs_share;"
            f"print([jobs_share({total}, i, {workers}) for i in range({workers})])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(shares)
