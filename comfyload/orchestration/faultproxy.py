"""A fault-injecting TCP proxy between the load generator and ComfyUI, with toxiproxy's
vocabulary: latency (+ jitter), bandwidth, slicer, timeout (stall), reset_peer, limit_data.
Toxics are switched on and off while connections are live, per direction (`downstream` =
server -> client, `upstream` = client -> server). Binds 127.0.0.1 unless told otherwise.

It runs an asyncio loop in a background thread of the `python -m comfyload` process (never in the
Locust process), so it adds no work to the load generator. `ToxiproxyServer` drives a real
toxiproxy through its HTTP API instead (--toxiproxy URL), behind the same three methods.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

import requests

from comfyload.common.errors import UserError

TOXIC_TYPES = {
    "latency": ("latency", "jitter"),
    "bandwidth": ("rate",),
    "slicer": ("average_size", "size_variation", "delay"),
    "timeout": ("timeout",),
    "reset_peer": ("timeout",),
    "limit_data": ("bytes",),
}
STREAMS = ("downstream", "upstream")


@dataclass
class Toxic:
    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict = field(default_factory=dict)
    since: float = field(default_factory=time.monotonic)

    def attr(self, key: str, default=0.0) -> float:
        return float(self.attributes.get(key, default))


def check_toxic(type_: str, stream: str, attributes: dict) -> None:
    if type_ not in TOXIC_TYPES:
        raise UserError(f"unknown toxic {type_!r}; known: {', '.join(sorted(TOXIC_TYPES))}")
    if stream not in STREAMS:
        raise UserError(f"toxic stream must be downstream or upstream, not {stream!r}")
    unknown = set(attributes) - set(TOXIC_TYPES[type_])
    if unknown:
        raise UserError(
            f"toxic {type_}: unknown attribute(s) {', '.join(sorted(unknown))}; known: {', '.join(TOXIC_TYPES[type_])}"
        )


class _Connection:
    def __init__(self, proxy, client_writer, server_writer):
        self.proxy = proxy
        self.writers = (client_writer, server_writer)
        self.started = time.monotonic()
        self.sent = {"downstream": 0, "upstream": 0}
        self.rolls = {}  # toxic name -> applies to this connection (toxicity)
        self.closed = False

    def applies(self, toxic: Toxic) -> bool:
        if toxic.name not in self.rolls:
            self.rolls[toxic.name] = random.random() < toxic.toxicity
        return self.rolls[toxic.name]

    def active(self, stream: str, type_: str | None = None) -> list[Toxic]:
        return [
            t
            for t in self.proxy.toxics.values()
            if t.stream == stream and (type_ is None or t.type == type_) and self.applies(t)
        ]

    def close(self, reset: bool = False) -> None:
        """reset: abortive close (RST), as a peer that resets the connection."""
        if self.closed:
            return
        self.closed = True
        for writer in self.writers:
            try:
                if reset:
                    sock = writer.get_extra_info("socket")
                    if sock is not None:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.close()
            except (OSError, RuntimeError):
                pass
        self.proxy.connections.discard(self)


class FaultProxy:
    def __init__(self, upstream: str, listen_host: str = "127.0.0.1", listen_port: int = 0):
        host, _, port = upstream.replace("http://", "").rstrip("/").partition(":")
        self.upstream = (host, int(port or 80))
        self.listen_host, self.listen_port = listen_host, listen_port
        self.toxics: dict[str, Toxic] = {}
        self.connections: set[_Connection] = set()
        self._names = itertools.count(1)
        self._loop = asyncio.new_event_loop()
        self._server = None
        self._thread = None

    @property
    def url(self) -> str:
        return f"http://{self.listen_host}:{self.listen_port}"

    def start(self) -> FaultProxy:
        ready = threading.Event()

        def serve():
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._accept, self.listen_host, self.listen_port)
            )
            self.listen_port = self._server.sockets[0].getsockname()[1]
            self._loop.create_task(self._watch_resets())
            ready.set()
            self._loop.run_forever()
            pending = asyncio.all_tasks(self._loop)
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.close()

        self._thread = threading.Thread(target=serve, name="fault-proxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        def shutdown():
            for conn in list(self.connections):
                conn.close()
            self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(shutdown)
        self._thread.join(5)

    # ---- control (thread-safe) -------------------------------------------------------------
    def add_toxic(
        self, type: str, stream: str = "downstream", toxicity: float = 1.0, name: str | None = None, **attributes
    ) -> str:
        check_toxic(type, stream, attributes)
        toxic = Toxic(name or f"{type}_{next(self._names)}", type, stream, toxicity, attributes)
        self._loop.call_soon_threadsafe(self.toxics.__setitem__, toxic.name, toxic)
        return toxic.name

    def remove_toxic(self, name: str) -> None:
        self._loop.call_soon_threadsafe(self.toxics.pop, name, None)

    # ---- data path -------------------------------------------------------------------------
    async def _accept(self, client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_writer.close()
            return
        conn = _Connection(self, client_writer, server_writer)
        self.connections.add(conn)
        await asyncio.gather(
            self._pump(conn, client_reader, server_writer, "upstream"),
            self._pump(conn, server_reader, client_writer, "downstream"),
            return_exceptions=True,
        )
        conn.close()

    async def _pump(self, conn: _Connection, reader, writer, stream: str) -> None:
        while not conn.closed:
            data = await reader.read(65536)
            if not data:
                break
            if not await self._stall(conn, stream):
                return
            for toxic in conn.active(stream, "latency"):
                await asyncio.sleep(
                    max(0.0, toxic.attr("latency") + random.uniform(-1, 1) * toxic.attr("jitter")) / 1000
                )
            for toxic in conn.active(stream, "bandwidth"):
                await asyncio.sleep(len(data) / max(toxic.attr("rate", 1.0) * 1024, 1.0))
            for chunk, delay_s in self._slices(conn, stream, data):
                if conn.closed:
                    return
                writer.write(chunk)
                await writer.drain()
                await asyncio.sleep(delay_s)
            conn.sent[stream] += len(data)
            limits = [t.attr("bytes") for t in conn.active(stream, "limit_data")]
            if limits and conn.sent[stream] >= min(limits):
                conn.close()
                return
        conn.close()

    async def _stall(self, conn: _Connection, stream: str) -> bool:
        """`timeout` toxic: hold the data while it is on; close the connection if it stays on
        longer than its timeout (0 = hold until removed). False = the connection was closed."""
        held_since = time.monotonic()
        while not conn.closed:
            stalls = conn.active(stream, "timeout")
            if not stalls:
                return True
            limits = [t.attr("timeout") for t in stalls if t.attr("timeout") > 0]
            if limits and (time.monotonic() - held_since) * 1000 >= min(limits):
                conn.close()
                return False
            await asyncio.sleep(0.01)
        return False

    def _slices(self, conn: _Connection, stream: str, data: bytes):
        slicers = conn.active(stream, "slicer")
        if not slicers:
            return [(data, 0.0)]
        s = slicers[0]
        size, variation, delay_s = (
            max(1, int(s.attr("average_size", 64))),
            int(s.attr("size_variation")),
            s.attr("delay") / 1e6,
        )
        pieces, i = [], 0
        while i < len(data):
            n = max(1, size + random.randint(-variation, variation))
            pieces.append((data[i : i + n], delay_s))
            i += n
        return pieces

    async def _watch_resets(self) -> None:
        """`reset_peer`: every connection the toxic applies to is reset `timeout` ms after the
        toxic (or the connection) started."""
        while True:
            now = time.monotonic()
            for conn in list(self.connections):
                for stream in STREAMS:
                    for toxic in conn.active(stream, "reset_peer"):
                        if (now - max(toxic.since, conn.started)) * 1000 >= toxic.attr("timeout"):
                            conn.close(reset=True)
            await asyncio.sleep(0.01)


class ToxiproxyServer:
    """A real toxiproxy (--toxiproxy http://HOST:8474) behind FaultProxy's control methods."""

    def __init__(self, api: str, upstream: str, name: str = "comfyload", listen: str = "127.0.0.1:0"):
        self.api, self.name = api.rstrip("/"), name
        self.upstream = upstream.replace("http://", "").rstrip("/")
        self.listen = listen
        self._names = itertools.count(1)

    def start(self) -> ToxiproxyServer:
        try:
            requests.delete(f"{self.api}/proxies/{self.name}", timeout=10)
            answer = requests.post(
                f"{self.api}/proxies",
                json={"name": self.name, "listen": self.listen, "upstream": self.upstream, "enabled": True},
                timeout=10,
            )
            answer.raise_for_status()
        except requests.RequestException as exc:
            raise UserError(f"toxiproxy at {self.api} refused the proxy: {exc}") from None
        self.listen = answer.json()["listen"]
        return self

    @property
    def url(self) -> str:
        return "http://" + self.listen.replace("[::]", "127.0.0.1")

    def add_toxic(
        self, type: str, stream: str = "downstream", toxicity: float = 1.0, name: str | None = None, **attributes
    ) -> str:
        check_toxic(type, stream, attributes)
        name = name or f"{type}_{next(self._names)}"
        requests.post(
            f"{self.api}/proxies/{self.name}/toxics",
            timeout=10,
            json={"name": name, "type": type, "stream": stream, "toxicity": toxicity, "attributes": attributes},
        ).raise_for_status()
        return name

    def remove_toxic(self, name: str) -> None:
        requests.delete(f"{self.api}/proxies/{self.name}/toxics/{name}", timeout=10)

    def stop(self) -> None:
        requests.delete(f"{self.api}/proxies/{self.name}", timeout=10)
