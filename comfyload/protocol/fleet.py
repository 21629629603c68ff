"""A fleet of ComfyUI servers behind one `pick()`. Routing: `round_robin` and `least_queue` per
prompt (a book's pages spread out), `sticky` per book (all pages of a book on one server).
least_queue routes on what the harness knows exactly, its own prompts in flight on each server,
plus the load others put there: the queue_remaining of ComfyUI's `status` broadcasts less our own
prompts at that moment (the smaller of the last two such estimates, so a broadcast that races one of
our completions adds no phantom load). Routing on the broadcasts alone follows a stale number: one
server held 3 of 4 prompts and the other 1 for a whole run.
A server that fails `max_failures` times in a row leaves rotation; a probe brings it back."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import requests

from comfyload.common.errors import UserError
from comfyload.common.records import event
from comfyload.protocol.host_url import parse_host

POLICIES = ("round_robin", "least_queue", "sticky")
FAILURE_OUTCOMES = ("lost",)  # the server could not be reached or forgot the prompt


def parse_hosts(text: str) -> list[str]:
    """A comma list of URLs, or a file with one URL a line (# comments)."""
    if not text:
        return []
    path = Path(text)
    if "," not in text and path.is_file():
        lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
        hosts = [line for line in lines if line]
    else:
        hosts = [h.strip() for h in text.split(",") if h.strip()]
    hosts = [parse_host(h, "--comfy-hosts entry") for h in hosts]  # each one URL, checked like --host
    if not hosts:
        raise UserError(f"--comfy-hosts {text!r} names no server")
    if len(set(hosts)) != len(hosts):
        raise UserError("--comfy-hosts lists a server twice")
    return [h.rstrip("/") for h in hosts]


class Fleet:
    def __init__(
        self, clients: list, policy: str = "round_robin", max_failures: int = 3, probe_s: float = 5.0, emit=None
    ):
        if policy not in POLICIES:
            raise UserError(f"--route must be one of {', '.join(POLICIES)}, not {policy!r}")
        self.clients, self.policy = clients, policy
        self.max_failures, self.probe_s = max_failures, probe_s
        self.emit = emit or (lambda record: None)
        self.failures = {c.server: 0 for c in clients}
        self.out = set()  # servers out of rotation
        self.in_flight = {c.server: 0 for c in clients}
        self.others = {c.server: (0, 0) for c in clients}  # last two estimates of others' prompts queued
        for c in clients:  # the fleet hears each client's events before anyone else
            c.events.status_broadcast.add_listener(self.status_seen)
            c.events.prompt_finished.add_listener(self.observe)  # our in-flight count is exact at once
            c.events.connection_changed.add_listener(self.connection_changed)
        self.sticky = {}  # book key -> client
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._closed = False
        if len(clients) > 1:
            threading.Thread(target=self._probe_forever, daemon=True, name="fleet-probe").start()

    @property
    def servers(self) -> list[str]:
        return [c.server for c in self.clients]

    def healthy(self) -> list:
        live = [c for c in self.clients if c.server not in self.out]
        return live or self.clients  # all out: keep trying them rather than stop the test

    def pick(self, key: str | None = None):
        with self._lock:
            live = self.healthy()
            if self.policy == "sticky" and key is not None:
                chosen = self.sticky.get(key)
                if chosen is None or chosen.server in self.out:
                    chosen = min(live, key=self._load)
                    self.sticky[key] = chosen
            elif self.policy == "least_queue" or (self.policy == "sticky"):
                chosen = min(live, key=self._load)
            else:
                chosen = live[next(self._turn) % len(live)]
            self.in_flight[chosen.server] += 1
            return chosen

    def _load(self, client) -> tuple:
        """Our prompts in flight there plus the others' (estimated); ties go to the fewest of ours."""
        mine = self.in_flight[client.server]
        return mine + min(self.others[client.server]), mine

    def status_seen(self, server: str, queue_remaining: int) -> None:
        """A `status` broadcast: what is queued there beyond our own prompts is someone else's."""
        with self._lock:
            estimate = max(0, int(queue_remaining) - self.in_flight.get(server, 0))
            self.others[server] = (self.others.get(server, (0, 0))[1], estimate)

    def observe(self, result) -> None:
        """Every finished prompt: counts consecutive failures per server."""
        server = result.server
        with self._lock:
            self.in_flight[server] = max(0, self.in_flight.get(server, 1) - 1)
            if result.outcome not in FAILURE_OUTCOMES:
                self.failures[server] = 0
                return
            self.failures[server] = self.failures.get(server, 0) + 1
            failing = self.failures[server] >= self.max_failures and len(self.clients) > 1
        if failing:
            self._take_out(server, reason=f"{self.failures[server]} lost prompts in a row")

    def connection_changed(self, state: str, server: str) -> None:
        """A server whose websocket dropped leaves rotation at once; the probe brings it back."""
        if state == "down" and len(self.clients) > 1:
            self._take_out(server, reason="websocket lost")

    def _take_out(self, server: str, reason: str) -> None:
        with self._lock:
            if server in self.out:
                return
            self.out.add(server)
        self.emit(event("fleet.server_out", server=server, reason=reason, failures=self.failures.get(server, 0)))

    def _probe_forever(self) -> None:
        while not self._closed:
            time.sleep(self.probe_s)
            for client in self.clients:
                if client.server not in self.out:
                    continue
                try:
                    requests.get(client.server + "/system_stats", timeout=2).raise_for_status()
                except requests.RequestException:
                    continue
                with self._lock:
                    self.out.discard(client.server)
                    self.failures[client.server] = 0
                self.emit(event("fleet.server_in", server=client.server))

    def close(self) -> None:
        self._closed = True
        for client in self.clients:
            client.close()
