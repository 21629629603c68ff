"""The yardsticks ComfyLoad is measured against: the least a client can do.

RawWsClient: websocket-client + requests, nothing else. One socket (like ComfyLoad: ComfyUI
broadcasts queue changes to every socket, so a socket per thread would load the server), a reader
thread that stamps two messages per prompt as they arrive: the terminal `execution_success` (where
ComfyLoad marks a prompt done) and `executing` with node=None (where the issue's raw client stops).
Callers are plain threads: submit with our own prompt_id and client_id, then wait on an Event.

poll_history_prompt: a hand-written harness's habit: submit, then GET /history/<id> every N s.

No Locust, no gevent here: this module must not import either.
"""

from __future__ import annotations

import json
import threading
import time

import requests
import websocket

from comfyload.protocol.results import TERMINAL_MESSAGES, server_timings
from comfyload.protocol.server_contract import new_id

TERMINAL = TERMINAL_MESSAGES


class _Pending:
    __slots__ = ("sent", "accepted", "terminal", "executing_none", "outcome", "event")

    def __init__(self):
        self.sent = None
        self.accepted = None  # POST /prompt answered
        self.terminal = None  # receipt time of execution_success / _error / _interrupted
        self.executing_none = None  # receipt time of `executing` node=None
        self.outcome = None
        self.event = threading.Event()


class RawWsClient:
    def __init__(self, url: str, pool: int = 64):
        self.url = url.rstrip("/")
        self.client_id = new_id()
        self.http = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=pool)
        self.http.mount("http://", adapter)
        self.ws = websocket.create_connection(
            self.url.replace("http://", "ws://") + f"/ws?clientId={self.client_id}", timeout=30
        )
        self.ws.settimeout(None)
        self._pending: dict[str, _Pending] = {}
        self._closed = False
        self._reader = threading.Thread(target=self._read, name="raw-ws-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closed:
            try:
                raw = self.ws.recv()
            except Exception:
                return
            if not isinstance(raw, str):
                continue  # binary previews
            now = time.time()
            try:
                message = json.loads(raw)
            except ValueError:  # the empty read of a closing socket
                continue
            data = message.get("data") or {}
            pending = self._pending.get(data.get("prompt_id"))
            if pending is None:
                continue
            kind = message.get("type")
            if kind in TERMINAL:
                pending.terminal, pending.outcome = now, kind
            elif kind == "executing" and data.get("node") is None:
                pending.executing_none = now
                pending.event.set()

    def run_prompt(self, graph: dict, timeout: float = 60.0) -> dict:
        """Submits and waits for `executing` node=None; returns the client-side timestamps."""
        prompt_id = new_id()
        pending = self._pending[prompt_id] = _Pending()
        pending.sent = time.time()
        try:
            response = self.http.post(
                self.url + "/prompt",
                timeout=30,
                data=json.dumps({"prompt": graph, "client_id": self.client_id, "prompt_id": prompt_id}),
            )
            pending.accepted = time.time()
            response.raise_for_status()
            pending.event.wait(timeout)
        finally:
            self._pending.pop(prompt_id, None)
        return {
            "prompt_id": prompt_id,
            "sent": pending.sent,
            "accepted": pending.accepted,
            "terminal": pending.terminal,
            "executing_none": pending.executing_none,
            "outcome": pending.outcome,
        }

    def close(self) -> None:
        self._closed = True
        try:
            self.ws.close(timeout=1)
        except Exception:
            pass
        self.http.close()


def run_closed_loop(url: str, graph: dict, users: int, jobs: int, max_seconds: float) -> list[dict]:
    """`users` threads, each submitting the next prompt when its last one is done, until `jobs`
    prompts were taken or `max_seconds` passed."""
    client = RawWsClient(url, pool=max(users, 4))
    lock = threading.Lock()
    taken = [0]
    results: list[dict] = []
    deadline = time.monotonic() + max_seconds

    def loop():
        while time.monotonic() < deadline:
            with lock:
                if taken[0] >= jobs:
                    return
                taken[0] += 1
            results.append(client.run_prompt(graph, timeout=max(1.0, deadline - time.monotonic())))

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(users)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()) + 5)
    finally:
        client.close()
    return results


def poll_history_prompt(http: requests.Session, url: str, graph: dict, interval: float, timeout: float) -> dict:
    """One prompt the way a hand-written harness waits for it: GET /history/<id> every
    `interval` seconds until it is there."""
    prompt_id = new_id()
    sent = time.time()
    http.post(
        url + "/prompt", data=json.dumps({"prompt": graph, "prompt_id": prompt_id}), timeout=30
    ).raise_for_status()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(interval)
        entry = http.get(f"{url}/history/{prompt_id}", timeout=30).json().get(prompt_id)
        if entry is not None:
            return {"prompt_id": prompt_id, "sent": sent, "done": time.time(), "entry": entry}
    return {"prompt_id": prompt_id, "sent": sent, "done": None, "entry": None}


def server_span(entry: dict) -> dict:
    """Server timings of a /history entry, read as the harness reads them (one function)."""
    return server_timings(entry)
