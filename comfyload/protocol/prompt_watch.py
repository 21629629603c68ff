"""What one waiting caller knows about its prompt, and the watches of one client by prompt id:
the submitter registers a watch, the websocket receiver fills it, the caller sleeps on it."""

from __future__ import annotations

import threading

from comfyload.protocol.results import PromptResult, apply_status_message


class PromptWatch:
    """What one waiting caller knows about its prompt; filled by the receiver."""

    def __init__(self, result: PromptResult, prompt_nodes):
        self.result = result
        self.prompt_nodes = prompt_nodes
        self.terminal = False
        self.terminal_ts = None  # receipt of execution_success / _error / _interrupted
        self.finished = threading.Event()  # terminal message or `executing` None, whichever first
        self.history_written = threading.Event()  # `executing` node=None
        self.orphaned = threading.Event()  # the socket it was submitted on dropped
        self.wake = threading.Event()  # finished or orphaned: the one event the caller sleeps on
        # set when the client decided the outcome itself (timeout, cut off): the interrupt that follows
        # must not turn it into "interrupted" (a load that ended would count as the server's failure)
        self.decided = False
        self._node = None
        self._node_started = 0.0

    def on_message(self, event: str, data: dict, received: float) -> None:
        if event == "executing":
            self._close_node(received)
            node = data.get("node")
            if node is None:
                self.history_written.set()
                self.finished.set()
                self.wake.set()
            else:
                self._node, self._node_started = node, received
        elif event == "progress":  # sampling step k of n (KSampler and other nodes with a progress bar)
            self.result.progress = {"node": data.get("node"), "value": data.get("value"), "max": data.get("max")}
            self.result.progress_messages += 1
        elif event == "executed":
            for kind, items in (data.get("output") or {}).items():
                for item in items if isinstance(items, list) else []:
                    if isinstance(item, dict) and "filename" in item:
                        self.result.outputs.append({"node": data.get("node"), "kind": kind, **item})
        elif not self.decided and apply_status_message(self.result, event, data, self.prompt_nodes):
            self._close_node(received)
            self.terminal, self.terminal_ts = True, received
            self.finished.set()
            self.wake.set()

    def orphan(self) -> None:
        self.orphaned.set()
        self.wake.set()

    def _close_node(self, now: float) -> None:
        if self._node is not None:
            ms = (now - self._node_started) * 1000.0
            self.result.node_ms[self._node] = self.result.node_ms.get(self._node, 0.0) + ms
            self._node = None


class Watches:
    """The watches of one client by prompt id, shared by its callers and its receiver."""

    def __init__(self):
        self._by_prompt: dict[str, PromptWatch] = {}
        self._lock = threading.Lock()

    def add(self, watch: PromptWatch) -> None:
        with self._lock:
            self._by_prompt[watch.result.prompt_id] = watch

    def discard(self, prompt_id: str) -> None:
        with self._lock:
            self._by_prompt.pop(prompt_id, None)

    def get(self, prompt_id) -> PromptWatch | None:
        """Unlocked: the receiver reads one per message, and a dict read is atomic."""
        return self._by_prompt.get(prompt_id)

    def orphan(self, client_id: str) -> None:
        """Every watch submitted under `client_id`: its socket dropped."""
        with self._lock:
            for watch in self._by_prompt.values():
                if watch.result.client_id == client_id:
                    watch.orphan()
