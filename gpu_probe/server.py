"""The sidecar: samples on the GPU host and streams them as NDJSON over HTTP, so a Locust master
on another machine sees the GPU (`--gpu-probe http://HOST:PORT`).

    GET /samples   one sample a line, forever; a blank line every HEARTBEAT_S keeps idle
                   connections honest (a reader that hears nothing for long reconnects)
    GET /latest    {"source": ..., "samples": [newest per GPU]}
    GET /health    "ok"

A new subscriber first gets the newest sample per GPU, then every sample as it is taken. One that
reads too slowly is dropped (it reconnects) so it never holds the sampler back."""

from __future__ import annotations

import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from gpu_probe import ticks

HEARTBEAT_S = 2.0
SUBSCRIBER_BACKLOG = 1000


class Broadcast:
    """Fan-out of samples to every connected subscriber, plus the newest sample per GPU."""

    def __init__(self):
        self.lock = threading.Lock()
        self.subscribers: set[queue.Queue] = set()
        self.latest: dict = {}

    def publish(self, sample: dict) -> None:
        with self.lock:
            self.latest[sample.get("gpu")] = sample
            for q in list(self.subscribers):
                if q.qsize() >= SUBSCRIBER_BACKLOG:
                    self.subscribers.discard(q)
                    q.put_nowait(None)  # the one slot kept free: the reader drains what it has, then ends
                else:
                    q.put_nowait(sample)

    def subscribe(self) -> queue.Queue:
        q = queue.Queue(maxsize=SUBSCRIBER_BACKLOG + 1)
        with self.lock:
            for sample in self.latest.values():
                q.put_nowait(sample)
            self.subscribers.add(q)
        return q

    def unsubscribe(self, q) -> None:
        with self.lock:
            self.subscribers.discard(q)


def handler_for(broadcast: Broadcast, source: str):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # the stream ends when the connection closes

        def log_message(self, *_args):
            pass

        def do_GET(self):
            path = self.path.split("?")[0].rstrip("/")
            if path == "/samples":
                return self.stream()
            if path == "/latest":
                with broadcast.lock:
                    body = {"source": source, "samples": list(broadcast.latest.values())}
                return self.reply(200, "application/json", json.dumps(body).encode())
            if path in ("", "/health"):
                return self.reply(200, "text/plain", b"ok\n")
            self.reply(404, "text/plain", b"not found\n")

        def reply(self, code, content_type, body: bytes):
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def stream(self):
            q = broadcast.subscribe()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                while True:
                    try:
                        sample = q.get(timeout=HEARTBEAT_S)
                    except queue.Empty:
                        self.wfile.write(b"\n")
                    else:
                        if sample is None:
                            return
                        self.wfile.write(json.dumps(sample, separators=(",", ":")).encode() + b"\n")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                broadcast.unsubscribe(q)

    return Handler


class SampleServer:
    """Samples `sampler` every `interval` seconds in a thread and serves the stream."""

    def __init__(self, sampler, interval: float, bind: str = "127.0.0.1", port: int = 0):
        self.sampler = sampler
        self.interval = interval
        self.broadcast = Broadcast()
        self.httpd = ThreadingHTTPServer((bind, port), handler_for(self.broadcast, sampler.source))
        self.httpd.daemon_threads = True
        self.stopping = threading.Event()

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def sample_forever(self) -> None:
        for _ in ticks(self.interval, self.stopping.wait, self.stopping.is_set):
            try:
                samples = self.sampler.sample()
            except Exception:  # a fallback server that went away: no samples this tick
                continue
            for sample in samples:
                self.broadcast.publish(sample)

    def serve_forever(self) -> None:
        threading.Thread(target=self.sample_forever, name="gpu-sampler", daemon=True).start()
        try:
            self.httpd.serve_forever()
        finally:
            self.stopping.set()
            self.httpd.server_close()
            self.sampler.close()

    def shutdown(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
