"""A prompt that meets its server down is lost after `submit_retry_s` (--submit-retry-s): one budget
for reaching the server, spent on waiting for the socket to re-open and then on POST retries, not
each in turn (seen at the default 10 s: lost after 19.7 s). Time here is a clock the test turns:
every wait and pause advances it, so the figure is exact and nothing is timed. The server is a
closed loopback port: each POST is refused at once."""

import pytest

from comfyload.orchestration.server import free_port
from comfyload.protocol import client as client_module
from comfyload.protocol.client import SUBMIT_BACKOFF_S, ComfyClient


class TurnedClock:
    """time.monotonic/time/sleep for the client module, and the socket's `wait`, on one clock."""

    def __init__(self):
        self.now = 0.0

    def monotonic(self):
        return self.now

    def time(self):
        return 1_000_000.0 + self.now

    def sleep(self, seconds):
        self.now += seconds

    def wait(self, timeout=None):  # the socket never re-opens: the wait runs out
        self.now += timeout or 0.0
        return False


@pytest.mark.parametrize("budget", [2.0, 10.0])
def test_a_prompt_meeting_a_server_down_is_lost_within_its_budget(budget, monkeypatch):
    clock = TurnedClock()
    monkeypatch.setattr(client_module, "time", clock)
    c = ComfyClient(f"http://127.0.0.1:{free_port()}")
    c.submit_retry_s = budget
    monkeypatch.setattr(c, "_connected", clock)
    try:
        started = clock.now
        lost = c.run_prompt({"1": {"class_type": "EmptyImage", "inputs": {}}}, "w", timeout=600)
    finally:
        c.http.close()
    assert lost.outcome == "lost" and "POST /prompt failed" in lost.error_message
    assert clock.now - started <= budget, f"lost after {clock.now - started:.1f} s of a {budget:g} s budget"
    assert clock.now - started >= budget - max(SUBMIT_BACKOFF_S), "the budget is spent before giving up"
