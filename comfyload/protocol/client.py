"""The ComfyUI protocol: POST /prompt, completion by websocket (or /history polling), /view
downloads, timeouts that clean up after themselves. Runs without Locust: usable from a script.

One ComfyClient holds one websocket and serves every caller in its process. Concurrency uses the
`threading` module, which Locust's gevent monkey-patching turns into greenlets, so the same code
is a native thread in a plain script and a greenlet inside Locust.

Here: submitting a prompt and waiting for its outcome. The socket and its reader are
ws_receiver.py, the watch a caller sleeps on prompt_watch.py, the outcome read back from the
server (poll mode, a dropped socket) reconciliation.py, create_time filled in after the caller
has its outcome record_finisher.py.
"""

from __future__ import annotations

import json
import logging
import os
import time
from urllib.parse import urlencode

import requests

from comfyload.common.errors import UserError
from comfyload.common.hooks import Events
from comfyload.protocol import prompt_lookup
from comfyload.protocol.prompt_watch import PromptWatch, Watches
from comfyload.protocol.reconciliation import HISTORY_POLL_S, fill_from_history, poll_history
from comfyload.protocol.record_finisher import HISTORY_WRITE_WAIT_S, RecordFinisher
from comfyload.protocol.results import PromptResult, summarise_validation_error
from comfyload.protocol.server_contract import ServerContract, new_id
from comfyload.protocol.ws_receiver import WsReceiver

log = logging.getLogger(__name__)

SUBMIT_BACKOFF_S = (0.2, 0.5, 1.0, 2.0)  # between POST /prompt retries after network errors
SUBMIT_RETRY_S = 10.0  # a server not reached this long (socket, POSTs) is down: the prompt is lost, not
# held until its timeout (a dead server must show as failures, promptly)
CONTRACT_RETRY_S = 10.0  # a server that could not say what it supports is asked again after this


class ComfyClient:
    """A connection to one ComfyUI server.

    completion: "ws" (default) or "poll:<seconds>" (poll /history like many apps do).
    """

    def __init__(
        self, server: str, completion: str = "ws", worker: str = "", http_timeout: float = 30.0, pool_size: int = 64
    ):
        self.server = server.rstrip("/")
        if "://" not in self.server:
            self.server = "http://" + self.server
        self.worker = worker
        # prompt_submitted(result): once per run_prompt (the audit's "submitted");
        # prompt_finished(result): when run_prompt returns its outcome (the caller's slot is free);
        # prompt_done(result): exactly once per submitted prompt, its record complete (create_time
        #   may come from /history a moment after prompt_finished);
        # connection_changed(state, server): "down" when the socket drops, "up" when it is back,
        #   "unreachable" when a request failed at the network level;
        # status_broadcast(server, queue_remaining): each `status` message (the fleet's load from others)
        self.events = Events(
            "prompt_submitted", "prompt_finished", "prompt_done", "connection_changed", "status_broadcast"
        )
        self.poll_interval = parse_completion(completion)
        self.http_timeout = http_timeout
        self.http = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)
        # requests reads the proxy environment again on every call (~10 % of a worker's CPU at a
        # few hundred prompts/s): read it once, here
        self.http.proxies.update(requests.utils.get_environ_proxies(self.server))
        self.http.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.http.trust_env = False
        self._contract: ServerContract | None = None  # learned once, on first need
        self._contract_retry_at = 0.0
        self._watches = Watches()
        self._socket = WsReceiver(self.server, http_timeout, self.events, self._watches)
        self._connected = self._socket.connected  # set while a socket is open
        self._finisher = RecordFinisher(self, self._watches, self.events.prompt_done)
        self.submit_retry_s = SUBMIT_RETRY_S  # cap on reaching the server (a fleet fails faster, to another server)

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> ComfyClient:
        """Opens the websocket (ws mode) and starts the receiver. A server that is down now (killed by
        a crash drill between preflight and the users' start) raises nothing: the receiver keeps
        reconnecting, and prompts sent meanwhile end `lost`, so a dead server shows as failures."""
        if self.poll_interval is None:
            self._socket.start()
        return self

    def close(self) -> None:
        self.flush()
        self._socket.close()
        self.http.close()

    def drop_socket(self) -> None:
        """Closes the socket under the receiver, as a network failure would (used by tests
        and fault drills); the receiver reconnects with a fresh client id."""
        self._socket.drop()

    # ---- what the socket and the record finisher learned ------------------------------------
    @property
    def stamps_create_time(self) -> bool:
        """Whether the server stamps create_time in /history (learned from the first finished entry)."""
        return self._finisher.stamps_create_time

    @stamps_create_time.setter
    def stamps_create_time(self, stamps: bool) -> None:
        self._finisher.stamps_create_time = stamps

    def _needs_create_time(self, result: PromptResult) -> bool:
        return self._finisher.needs_create_time(result)

    @property
    def client_id(self) -> str:
        """The id of the socket now open (a fresh one after each reconnect)."""
        return self._socket.client_id

    @property
    def reconnects(self) -> int:
        return self._socket.reconnects

    @property
    def queue_remaining(self):
        """From the server's `status` broadcasts (fleet routing)."""
        return self._socket.queue_remaining

    # ---- HTTP helpers ------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.server + path

    def get_json(self, path: str, timeout: float | None = None):
        response = self.http.get(self.url(path), timeout=timeout or self.http_timeout)
        response.raise_for_status()
        return response.json()

    def system_stats(self) -> dict:
        return self.get_json("/system_stats")

    @property
    def contract(self) -> ServerContract:
        """The server's version, endpoints and mode, learned once; while the server cannot be asked,
        the contract every version keeps (/history, /queue, /interrupt), asked again next time."""
        if self._contract is None:
            if time.monotonic() < self._contract_retry_at:  # a server that could not tell is not asked per call
                return ServerContract()
            try:
                self._contract = ServerContract.learn(self.http, self.server, timeout=self.http_timeout)
            except (requests.RequestException, ValueError):
                self._contract_retry_at = time.monotonic() + CONTRACT_RETRY_S
                return ServerContract()
        return self._contract

    def object_info(self) -> dict:
        return self.get_json("/object_info", timeout=max(self.http_timeout, 60))

    def upload_image(self, path, name: str) -> str:
        """POST /upload/image; returns the name a LoadImage input uses (subfolder/name)."""
        with open(path, "rb") as f:
            response = self.http.post(
                self.url("/upload/image"),
                files={"image": (name, f, "application/octet-stream")},
                data={"overwrite": "true", "type": "input"},
                timeout=self.http_timeout,
            )
        response.raise_for_status()
        answer = response.json()
        return f"{answer['subfolder']}/{answer['name']}" if answer.get("subfolder") else answer["name"]

    # ---- one prompt ----------------------------------------------------------------------------
    def run_prompt(
        self,
        graph: dict,
        workflow: str,
        timeout: float,
        intended_send_ts: float | None = None,
        download: bool = False,
        attempt: int = 1,
        extra: dict | None = None,
    ) -> PromptResult:
        """Submits `graph` and waits for its outcome; never raises for a server-side failure:
        every submitted prompt ends in exactly one PromptResult."""
        now = time.time()
        deadline = time.monotonic() + timeout - max(0.0, now - (intended_send_ts or now))
        # One budget to reach the server, spent first on a socket being re-opened, then on POST retries:
        # a prompt that meets a server down is lost after submit_retry_s, not twice that
        reach_by = min(deadline, time.monotonic() + self.submit_retry_s)
        if self.poll_interval is None:
            self._connected.wait(max(0.0, reach_by - time.monotonic()))
        result = PromptResult(
            prompt_id=new_id(),
            client_id=self.client_id,
            server=self.server,
            workflow=workflow,
            worker=self.worker,
            attempt=attempt,
            intended_send_ts=intended_send_ts or now,
            extra=dict(extra or {}),
            completion="ws" if self.poll_interval is None else "poll",
            node_classes={k: v.get("class_type") for k, v in graph.items()},
        )
        watch = PromptWatch(result, list(graph))
        self.events.prompt_submitted.fire(result=result)
        if self.poll_interval is None:
            self._watches.add(watch)
        try:
            if self._submit(graph, result, reach_by):
                if result.client_id != self.client_id:  # the socket was replaced meanwhile
                    watch.orphan()
                self._wait(watch, deadline, timeout)
                if download and result.ok:
                    self._download_outputs(result)
        except BaseException:  # the caller was killed (load stopped): still one record
            if result.done_ts is None:
                watch.decided = True
                result.done_ts = time.time()
                result.outcome, result.error_type = "cut_off", "load_stopped"
                result.error_message = "load stopped while the prompt was in flight"
                self.cancel(result.prompt_id)
            raise
        finally:
            self.events.prompt_finished.fire(result=result)  # the caller has its outcome: a slot is free
            if self._needs_create_time(result):
                # the caller goes on at once; the record is finished (and handed on) in the background.
                # The watch stays routed meanwhile: `executing` None (history written) follows the
                # terminal message, and the finisher waits for it.
                self._finisher.finish_later(watch)
            else:
                self._watches.discard(result.prompt_id)
                self.events.prompt_done.fire(result=result)
        return result

    def flush(self, timeout: float = HISTORY_WRITE_WAIT_S + 35) -> None:
        """Waits until every finished prompt's record has been handed to prompt_done's listeners."""
        self._finisher.flush(timeout)

    def _submit(self, graph: dict, result: PromptResult, reach_by: float) -> bool:
        """POST /prompt, retried on network errors until `reach_by`. The prompt id is ours, so
        before a retry the server is asked whether the last POST got through: a prompt is never
        submitted twice."""
        body = json.dumps({"prompt": graph, "client_id": result.client_id, "prompt_id": result.prompt_id})
        result.sent_ts = time.time()
        failures = 0
        while True:
            try:
                response = self.http.post(
                    self.url("/prompt"),
                    data=body,
                    timeout=self.http_timeout,
                    headers={"Content-Type": "application/json"},
                )
                break
            except requests.RequestException as exc:
                failures += 1
                result.submit_retries = failures
                if failures == 1:
                    self.events.connection_changed.fire(state="unreachable", server=self.server)
                pause = SUBMIT_BACKOFF_S[min(failures, len(SUBMIT_BACKOFF_S)) - 1]
                if time.monotonic() + pause >= reach_by:
                    result.done_ts = time.time()
                    result.outcome, result.error_type = "lost", type(exc).__name__
                    result.error_message = f"POST /prompt failed: {str(exc)[:300]}"
                    return False
                time.sleep(pause)
                got_through = prompt_lookup.server_entry(self, result.prompt_id) is not None
                if got_through or prompt_lookup.known_to_queue(self, result.prompt_id):
                    result.accepted_ts = time.time()  # the earlier POST got through
                    return True
        result.accepted_ts = time.time()
        if response.status_code == 200:
            return True
        result.done_ts = result.accepted_ts
        try:
            answer = response.json()
        except ValueError:
            answer = {"error": {"type": f"HTTP {response.status_code}", "message": response.text[:300]}}
        result.outcome = "validation_error" if response.status_code == 400 else "execution_error"
        result.error_type, result.error_message, result.error_node = summarise_validation_error(answer)
        return False

    def _wait(self, watch: PromptWatch, deadline: float, timeout: float) -> None:
        result = watch.result
        if self.poll_interval is not None:
            poll_history(self, watch, deadline, self.poll_interval)
        else:
            while not watch.finished.is_set() and not watch.orphaned.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                # one wait per prompt, no polling: 2,000 waiting users cost nothing while they wait
                watch.wake.wait(left)
            if watch.finished.is_set():
                # Done at the terminal message: the server's span ends there and every output is
                # known. `executing` None can lag it by ComfyUI's post-prompt gc.collect().
                result.done_ts = watch.terminal_ts or time.time()
                if not watch.terminal:  # `executing` None without a terminal message: ask the server
                    fill_from_history(watch, prompt_lookup.server_entry(self, result.prompt_id))
            elif watch.orphaned.is_set():
                result.completion = "history"
                poll_history(self, watch, deadline, HISTORY_POLL_S)
        if result.done_ts is None:
            watch.decided = True
            self._give_up(result, timeout)

    def _give_up(self, result: PromptResult, timeout: float) -> None:
        """Timeout: take the prompt off the queue or interrupt it, so it does not delay others."""
        result.done_ts = time.time()
        result.outcome, result.error_type = "timeout", "timeout"
        result.error_message = f"no result within the per-prompt timeout ({timeout:g} s)"
        self.cancel(result.prompt_id)

    def cancel(self, prompt_id: str) -> None:
        """Takes the prompt off the queue or interrupts it: one atomic POST /api/jobs/{id}/cancel where
        the server has it, else a queue delete and an interrupt naming the prompt."""
        if self.contract.jobs_api:
            steps = ((f"/api/jobs/{prompt_id}/cancel", {}),)
        else:
            steps = (("/queue", {"delete": [prompt_id]}), ("/interrupt", {"prompt_id": prompt_id}))
        for path, body in steps:
            try:
                self.http.post(self.url(path), json=body, timeout=self.http_timeout)
            except requests.RequestException as exc:  # a dead server has nothing to cancel
                log.debug("could not cancel %s via %s: %s", prompt_id, path, exc)
                return

    def _download_outputs(self, result: PromptResult) -> None:
        """Fetches every output file via /view: the "rendered URL" of the SLA latency."""
        started = time.time()
        for output in result.outputs:
            query = urlencode({k: output.get(k, "") for k in ("filename", "subfolder", "type")})
            try:
                response = self.http.get(self.url(f"/view?{query}"), timeout=self.http_timeout)
                response.raise_for_status()
                _ = response.content
            except requests.RequestException as exc:
                result.outcome, result.error_type = "lost", "download_failed"
                result.error_message = f"GET /view {output.get('filename')}: {str(exc)[:200]}"
                break
        result.done_ts = time.time()
        result.download_ms = (result.done_ts - started) * 1000.0


def parse_completion(mode: str):
    """ "ws" -> None; "poll:2" -> 2.0 (seconds between /history polls)."""
    if mode == "ws":
        return None
    if mode.startswith("poll:"):
        try:
            interval = float(mode[5:])
        except ValueError:
            interval = -1
        if interval > 0:
            return interval
    raise UserError(f"--completion must be 'ws' or 'poll:<seconds>' (e.g. poll:2), not {mode!r}")
