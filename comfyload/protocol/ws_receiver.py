"""The websocket of one ComfyClient: opened under a fresh client id, read on its own thread, each
message routed by prompt_id to the watch waiting on it; a dropped socket orphans the watches
submitted on it (the client reconciles them) and is reopened with backoff."""

from __future__ import annotations

import json
import logging
import threading
import time

import websocket

from comfyload.common.hooks import Events
from comfyload.protocol.prompt_watch import Watches
from comfyload.protocol.server_contract import new_id

log = logging.getLogger(__name__)

KEEPALIVE_S = 10.0  # a silent socket is pinged after this; no pong by the next -> dead
RECONNECT_BACKOFF_S = (0.1, 0.25, 0.5, 1.0, 2.0)
STABLE_CONNECTION_S = 5.0  # a socket that lived this long resets the reconnect backoff


class WsReceiver:
    """One socket to `server`; fires the client's connection_changed and status_broadcast events."""

    def __init__(self, server: str, http_timeout: float, events: Events, watches: Watches):
        self.server = server
        self.http_timeout = http_timeout
        self.events = events
        self.watches = watches
        self.client_id = new_id()
        self.connected = threading.Event()
        self.reconnects = 0
        self.queue_remaining = None  # from the server's `status` broadcasts (fleet routing)
        self._ws = None
        self._closed = False
        self._thread = None

    def start(self) -> None:
        """Opens the socket and starts the reader. A server that is down now raises nothing: the
        reader keeps reconnecting."""
        if self._thread is not None:
            return
        try:
            self._connect()
        except Exception as exc:
            log.warning("websocket to %s not open (%s); reconnecting", self.server, type(exc).__name__)
            self._tell_connection("down")
        self._thread = threading.Thread(target=self._receive_forever, name="comfy-ws-receiver", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed = True
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                ws.close(timeout=1)
            except Exception:
                pass

    def drop(self) -> None:
        """Closes the socket under the reader, as a network failure would; the reader reconnects
        with a fresh client id."""
        ws = self._ws
        if ws is not None:
            ws.sock and ws.sock.shutdown(2)

    def _connect(self) -> None:
        """Opens a socket under a fresh client id: ComfyUI drops a new socket that reuses an id
        whose old socket closes late, so an id is never reused."""
        client_id = new_id()
        ws_url = self.server.replace("http://", "ws://").replace("https://", "wss://") + f"/ws?clientId={client_id}"
        # no UTF-8 check in pure Python per frame (~7 % of a worker's CPU): json.loads rejects bad UTF-8
        ws = websocket.create_connection(
            ws_url, timeout=self.http_timeout, enable_multithread=True, skip_utf8_validation=True
        )
        ws.settimeout(KEEPALIVE_S)
        self._ws, self.client_id = ws, client_id
        self.connected.set()

    def _receive_forever(self) -> None:
        """Reads every message as it arrives and routes it by prompt_id. Never blocks on a
        caller: ComfyUI writes to its sockets one after another, so a slow reader here would
        delay every other client of the server."""
        failures = 0  # consecutive short-lived connections or failed connects
        while not self._closed:
            ws, opened = self._ws, time.monotonic()
            if ws is None:  # never opened (the server was down at start): straight to reconnecting
                failures += 1
            else:
                try:
                    self._read_until_dropped(ws)
                except Exception as exc:  # any read failure means the socket is gone
                    if self._closed:
                        return
                    log.warning("websocket to %s dropped (%s); reconnecting", self.server, type(exc).__name__)
                self.connected.clear()
                self.watches.orphan(self.client_id)
                self._tell_connection("down")
                # a link that keeps resetting is not hammered: back off unless the socket was stable
                failures = 0 if time.monotonic() - opened > STABLE_CONNECTION_S else failures + 1
            while not self._closed:
                if failures:
                    time.sleep(RECONNECT_BACKOFF_S[min(failures, len(RECONNECT_BACKOFF_S)) - 1])
                try:
                    self._connect()
                    self.reconnects += 1
                    self._tell_connection("up")
                    break
                except Exception:
                    failures += 1

    def _read_until_dropped(self, ws) -> None:
        ping_outstanding = False
        while not self._closed:
            try:
                opcode, frame = ws.recv_data_frame(True)
            except websocket.WebSocketTimeoutException:
                if ping_outstanding:
                    raise ConnectionError("no pong from server") from None
                ws.ping()
                ping_outstanding = True
                continue
            ping_outstanding = False
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                raise ConnectionError("server closed the socket")
            if opcode == websocket.ABNF.OPCODE_TEXT:
                self._route(frame.data, time.time())
            # binary frames (sampler previews with --preview-method) are read above and dropped here

    def _route(self, raw: bytes, received: float) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            return
        data = message.get("data")
        if not isinstance(data, dict):
            return
        if message.get("type") == "status":
            self.queue_remaining = ((data.get("status") or {}).get("exec_info") or {}).get("queue_remaining")
            if self.queue_remaining is not None:
                self.events.status_broadcast.fire(server=self.server, queue_remaining=self.queue_remaining)
            return
        watch = self.watches.get(data.get("prompt_id"))
        if watch is not None:
            watch.on_message(message.get("type"), data, received)

    def _tell_connection(self, state: str) -> None:
        self.events.connection_changed.fire(state=state, server=self.server)
