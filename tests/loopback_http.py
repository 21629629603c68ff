"""A web server on a free loopback port that is not ComfyUI (a plain page, a JSON API, a /prompt that
refuses), for the tests and scripts/bad_input_tally.py that need one. One home for the handler's reply
and the serving thread: each caller states only what its server answers."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager

NOT_FOUND = (404, "text/html", b"<h1>Not Found</h1>")


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A handler that answers with `reply` and keeps the test output free of its access log."""

    def reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def routes_handler(routes: dict, default: tuple = NOT_FOUND) -> type[QuietHandler]:
    """GET path (query dropped) -> (status, content type, body); `routes` may be filled after start."""

    class RoutesHandler(QuietHandler):
        def do_GET(self):
            self.reply(*routes.get(self.path.split("?")[0], default))

    return RoutesHandler


def start(handler: type[http.server.BaseHTTPRequestHandler]) -> tuple[http.server.ThreadingHTTPServer, str]:
    """The server, serving on a daemon thread, and its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[tuple[http.server.ThreadingHTTPServer, str]]:
    """`start`, and the server shut and its port closed on the way out."""
    server, url = start(handler)
    try:
        yield server, url
    finally:
        server.shutdown()
        server.server_close()
