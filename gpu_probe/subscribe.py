"""The client side of the sidecar: read its NDJSON stream, and keep reading across drops."""

from __future__ import annotations

import json
import time

import requests

from gpu_probe.server import HEARTBEAT_S

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 5 * HEARTBEAT_S  # silence this long means the sidecar (or the link) is gone
RETRY_S = (0.5, 1.0, 2.0, 5.0)  # waits between reconnects; the last repeats


def samples_url(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/samples") else url + "/samples"


def stream(url: str, session: requests.Session | None = None):
    """Yields samples from one connection until it ends; raises requests' errors when it fails."""
    session = session or requests.Session()
    with session.get(samples_url(url), stream=True, timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S)) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.strip():
                yield json.loads(line)


def follow(url: str, on_sample, say=print, sleep=time.sleep, stopped=lambda: False) -> None:
    """Calls on_sample(sample) for every sample, reconnecting whenever the stream drops, until
    stopped(). Says one line when the stream is lost and one when it is back, not one per try."""
    failures = 0
    connected_once = False
    while not stopped():
        try:
            for sample in stream(url):
                if failures or not connected_once:
                    say(f"GPU probe: {'reconnected to' if connected_once else 'streaming from'} {samples_url(url)}")
                    failures, connected_once = 0, True
                on_sample(sample)
                if stopped():
                    return
            error = "stream ended"
        except (requests.RequestException, ValueError) as exc:
            error = type(exc).__name__
        if failures == 0:
            say(f"GPU probe: {samples_url(url)} unavailable ({error}); retrying")
        sleep(RETRY_S[min(failures, len(RETRY_S) - 1)])
        failures += 1
