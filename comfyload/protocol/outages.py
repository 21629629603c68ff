"""Outages on any run: when a server stops answering, say so at once (one line) and record
`outage.start` / `outage.end` events, so the metrics model measures and judges recovery.

A dropped websocket or a refused request makes the server *suspect*; it is *down* only when
/system_stats does not answer either (a network blip that a reconnect mends is no outage). The
outage starts at the first sign and ends when /system_stats answers again. Runs without Locust:
the watcher is a `threading.Thread`, a greenlet under Locust's monkey-patching."""

from __future__ import annotations

import sys
import threading
import time

import requests

from comfyload.common.hooks import Events

PROBE_INTERVAL_S = 1.0
PROBE_TIMEOUT_S = 2.0


def answers(server: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    try:
        requests.get(server.rstrip("/") + "/system_stats", timeout=timeout).raise_for_status()
        return True
    except requests.RequestException:
        return False


class OutageMonitor:
    """`suspect(server)` from any client's connection_changed; its events say what it found:
    outage_started(server, ts, cause) and outage_ended(server, ts, down_s)."""

    def __init__(self, interval: float = PROBE_INTERVAL_S, say=None):
        self.events = Events("outage_started", "outage_ended")
        self.interval = interval
        self.say = say or (lambda line: print(line, file=sys.stderr, flush=True))
        self.watching: set[str] = set()
        self.down: dict[str, float] = {}  # server -> outage start
        self._lock = threading.Lock()
        self._closed = threading.Event()

    def suspect(self, server: str, since: float | None = None) -> None:
        with self._lock:
            if server in self.watching or self._closed.is_set():
                return
            self.watching.add(server)
        threading.Thread(
            target=self._watch, args=(server, since or time.time()), daemon=True, name="comfy-outage-watch"
        ).start()

    def _watch(self, server: str, since: float) -> None:
        try:
            if answers(server):
                return
            self.down[server] = since
            self.events.outage_started.fire(server=server, ts=since, cause="no answer to /system_stats")
            self.say(
                f"[comfyload] OUTAGE: {server} stopped answering at {time.strftime('%H:%M:%S', time.localtime(since))}"
            )
            while not self._closed.wait(self.interval):
                if answers(server):
                    now = time.time()
                    del self.down[server]
                    self.events.outage_ended.fire(server=server, ts=now, down_s=now - since)
                    self.say(f"[comfyload] {server} answers again after {now - since:.1f} s")
                    return
        finally:
            with self._lock:
                self.watching.discard(server)

    def close(self) -> None:
        """Stops watching; an outage still open stays open (the run ended with the server down)."""
        self._closed.set()
        for server, since in list(self.down.items()):
            self.say(f"[comfyload] {server} was still down when load stopped ({time.time() - since:.0f} s)")
