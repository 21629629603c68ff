"""The ComfyUI protocol: POST /prompt, completion by websocket (or /history polling), /view
downloads, timeouts that clean up after themselves. Runs without Locust: usable from a script.

One ComfyClient holds one websocket and serves every caller in its process. Concurrency uses the
`threading` module, which Locust's gevent monkey-patching turns into greenlets, so the same code
is a native thread in a plain script and a greenlet inside Locust.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from urllib.parse import urlencode

import requests
import websocket

from comfyload.common.errors import UserError
from comfyload.common.hooks import Events
from comfyload.protocol.results import PromptResult, apply_status_message, server_timings, summarise_validation_error
from comfyload.protocol.server_contract import (
    QUEUED_JOB_STATUSES,
    TERMINAL_JOB_STATUSES,
    ServerContract,
    history_entry_from_job,
    new_id,
    queue_holds,
)

log = logging.getLogger(__name__)

KEEPALIVE_S = 10.0  # a silent socket is pinged after this; no pong by the next -> dead
RECONNECT_BACKOFF_S = (0.1, 0.25, 0.5, 1.0, 2.0)
STABLE_CONNECTION_S = 5.0  # a socket that lived this long resets the reconnect backoff
HISTORY_POLL_S = 0.5  # reconciliation poll after a socket drop
HISTORY_WRITE_WAIT_S = 5.0  # how long to wait for `executing` None before reading /history
SUBMIT_BACKOFF_S = (0.2, 0.5, 1.0, 2.0)  # between POST /prompt retries after network errors
SUBMIT_RETRY_S = 10.0  # a server that refuses POSTs this long is down: the prompt is lost, not
# held until its timeout (a dead server must show as failures, promptly)
CONTRACT_RETRY_S = 10.0  # a server that could not say what it supports is asked again after this
UNREACHABLE_S = 3.0  # an orphaned prompt whose server answers neither /history nor /queue
# this long is lost (the server died with it)


class _Watch:
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
        self.client_id = new_id()
        self._contract: ServerContract | None = None  # learned once, on first need
        self._contract_retry_at = 0.0
        # 0.3.75 stamps create_time (the accept time) in /history, 0.3.64 and 0.3.52 do not: learned
        # from the first finished entry, so a server without it is not asked again after each prompt
        self.stamps_create_time = True
        self._watches: dict[str, _Watch] = {}
        self._lock = threading.Lock()
        self._ws = None
        self._connected = threading.Event()
        self._closed = False
        self._receiver = None
        self._unfinished: list[_Watch] = []  # finished prompts whose record waits for create_time
        self._unfinished_cv = threading.Condition()
        self._finisher = None
        self.reconnects = 0
        self.queue_remaining = None  # from the server's `status` broadcasts (fleet routing)
        self.submit_retry_s = SUBMIT_RETRY_S  # cap on POST retries (a fleet fails faster, to another server)

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> ComfyClient:
        """Opens the websocket (ws mode) and starts the receiver. A server that is down now (killed by
        a crash drill between preflight and the users' start) raises nothing: the receiver keeps
        reconnecting, and prompts sent meanwhile end `lost`, so a dead server shows as failures."""
        if self.poll_interval is None and self._receiver is None:
            try:
                self._connect()
            except Exception as exc:
                log.warning("websocket to %s not open (%s); reconnecting", self.server, type(exc).__name__)
                self._tell_connection("down")
            self._receiver = threading.Thread(target=self._receive_forever, name="comfy-ws-receiver", daemon=True)
            self._receiver.start()
        return self

    def close(self) -> None:
        self.flush()
        self._closed = True
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                ws.close(timeout=1)
            except Exception:
                pass
        self.http.close()

    def drop_socket(self) -> None:
        """Closes the socket under the receiver, as a network failure would (used by tests
        and fault drills); the receiver reconnects with a fresh client id."""
        ws = self._ws
        if ws is not None:
            ws.sock and ws.sock.shutdown(2)

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

    def check_reachable(self) -> dict:
        """/system_stats, or one clear UserError saying the server cannot be reached."""
        try:
            return self.system_stats()
        except requests.RequestException as exc:
            raise UserError(
                f"ComfyUI at {self.server} is not reachable: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            ) from None
        except ValueError:
            raise UserError(
                f"{self.server} answered /system_stats with something that is not JSON: is it a ComfyUI server?"
            ) from None

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
        if self.poll_interval is None:  # a socket being re-opened: wait for it, as long as a POST would retry
            self._connected.wait(max(0.0, min(deadline, time.monotonic() + self.submit_retry_s) - time.monotonic()))
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
        watch = _Watch(result, list(graph))
        self.events.prompt_submitted.fire(result=result)
        if self.poll_interval is None:
            with self._lock:
                self._watches[result.prompt_id] = watch
        try:
            if self._submit(graph, result, deadline):
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
                self._finish_later(watch)
            else:
                with self._lock:
                    self._watches.pop(result.prompt_id, None)
                self.events.prompt_done.fire(result=result)
        return result

    def flush(self, timeout: float = HISTORY_WRITE_WAIT_S + 35) -> None:
        """Waits until every finished prompt's record has been handed to prompt_done's listeners."""
        with self._unfinished_cv:
            self._unfinished_cv.wait_for(lambda: not self._unfinished, timeout)

    def _submit(self, graph: dict, result: PromptResult, deadline: float) -> bool:
        """POST /prompt, retried on network errors until the deadline. The prompt id is ours, so
        before a retry the server is asked whether the last POST got through: a prompt is never
        submitted twice."""
        body = json.dumps({"prompt": graph, "client_id": result.client_id, "prompt_id": result.prompt_id})
        result.sent_ts = time.time()
        deadline = min(deadline, time.monotonic() + self.submit_retry_s)
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
                    self._tell_connection("unreachable")
                pause = SUBMIT_BACKOFF_S[min(failures, len(SUBMIT_BACKOFF_S)) - 1]
                if time.monotonic() + pause >= deadline:
                    result.done_ts = time.time()
                    result.outcome, result.error_type = "lost", type(exc).__name__
                    result.error_message = f"POST /prompt failed: {str(exc)[:300]}"
                    return False
                time.sleep(pause)
                if self._server_entry(result.prompt_id) is not None or self._known_to_queue(result.prompt_id):
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

    def _wait(self, watch: _Watch, deadline: float, timeout: float) -> None:
        result = watch.result
        if self.poll_interval is not None:
            self._poll_history(watch, deadline, self.poll_interval)
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
                    self._fill_from_history(watch, self._server_entry(result.prompt_id))
            elif watch.orphaned.is_set():
                result.completion = "history"
                self._poll_history(watch, deadline, HISTORY_POLL_S)
        if result.done_ts is None:
            watch.decided = True
            self._give_up(result, timeout)

    def _poll_history(self, watch: _Watch, deadline: float, interval: float) -> None:
        """Waits for the prompt to appear in /history. Used by poll mode and to reconcile the
        prompts a dropped socket left in flight: absent from history and queue = lost."""
        result = watch.result
        answered = time.monotonic()  # when the server last answered either question
        # poll mode asks /history as the apps it models do; a reconciliation asks what the server has
        lookup = self._server_entry if watch.orphaned.is_set() else self._history_entry
        while True:
            entry = lookup(result.prompt_id)
            if entry is not None:
                result.done_ts = time.time()
                watch.history_written.set()
                self._fill_from_history(watch, entry)
                return
            queued = self._known_to_queue(result.prompt_id) if watch.orphaned.is_set() else None
            if queued is False:
                entry = lookup(result.prompt_id)  # it may have finished in between
                if entry is not None:
                    continue
                result.done_ts = time.time()
                result.outcome, result.error_type = "lost", "lost"
                result.error_message = "websocket dropped and the server no longer knows the prompt"
                return
            if queued is not None or not watch.orphaned.is_set():
                answered = time.monotonic()
            elif time.monotonic() - answered >= UNREACHABLE_S:
                result.done_ts = time.time()
                result.outcome, result.error_type = "lost", "server_unreachable"
                result.error_message = f"the server stopped answering (no /history or /queue for {UNREACHABLE_S:g} s)"
                return
            if time.monotonic() + interval > deadline:
                return
            time.sleep(interval)

    def _history_entry(self, prompt_id: str):
        try:
            return self.get_json(f"/history/{prompt_id}").get(prompt_id)
        except (requests.RequestException, ValueError):
            return None

    def _job(self, prompt_id: str):
        """GET /api/jobs/{id}: the job, {} when the server does not know it, None when it cannot be asked."""
        try:
            response = self.http.get(self.url(f"/api/jobs/{prompt_id}"), timeout=self.http_timeout)
            if response.status_code == 404:
                return {}
            response.raise_for_status()
            return response.json()
        except (requests.RequestException, ValueError):
            return None

    def _server_entry(self, prompt_id: str):
        """The finished prompt as a /history entry: from /api/jobs where the server has it (one call
        that also says queued or unknown), else /history. None while it is not finished."""
        if not self.contract.jobs_api:
            return self._history_entry(prompt_id)
        job = self._job(prompt_id)
        return history_entry_from_job(job) if job and job.get("status") in TERMINAL_JOB_STATUSES else None

    def _known_to_queue(self, prompt_id: str):
        """True/False whether the server's queue holds the prompt; None when it cannot be asked."""
        if self.contract.jobs_api:
            job = self._job(prompt_id)
            return None if job is None else job.get("status") in QUEUED_JOB_STATUSES
        try:
            queue = self.get_json("/queue")
        except (requests.RequestException, ValueError):
            return None
        return queue_holds(queue, prompt_id)

    def _fill_from_history(self, watch: _Watch, entry: dict | None) -> None:
        if entry is None:
            return
        result = watch.result
        for event, data in (entry.get("status") or {}).get("messages", []):
            if apply_status_message(result, event, data, watch.prompt_nodes):
                watch.terminal = True
        if not result.outputs:
            for node, output in (entry.get("outputs") or {}).items():
                watch.on_message("executed", {"node": node, "output": output}, 0.0)
        result.create_time = server_timings(entry)["create_time"] or result.create_time
        if not watch.terminal:
            result.outcome, result.error_type = "lost", "no_status"
            result.error_message = "history holds the prompt without a final status"

    def _needs_create_time(self, result: PromptResult) -> bool:
        return (
            self.stamps_create_time
            and result.create_time is None
            and result.execution_start is not None
            and result.outcome not in ("timeout", "lost")
        )

    def _finish_later(self, watch: _Watch) -> None:
        with self._unfinished_cv:
            self._unfinished.append(watch)
            if self._finisher is None:
                self._finisher = threading.Thread(
                    target=self._finish_records, name="comfy-record-finisher", daemon=True
                )
                self._finisher.start()

    def _finish_records(self) -> None:
        """create_time is only in /history: read it once the history is written, so queue wait =
        execution_start - create_time is exact; then hand the record on. One reader per client
        takes every record waiting and reads them with one GET /history?max_items=N (the newest
        entries): a request per prompt cost the server, and this process, about as much as a
        near-instant prompt itself. A prompt outside that window is read on its own. The reader
        ends when nothing waits; the next finished prompt starts another."""
        while True:
            with self._unfinished_cv:
                if not self._unfinished:
                    self._finisher = None
                    return
                batch = list(self._unfinished)
            for watch in batch:
                watch.history_written.wait(max(0.0, (watch.result.done_ts or 0) + HISTORY_WRITE_WAIT_S - time.time()))
            recent = self._recent_history(2 * len(batch) + 16) if len(batch) > 1 else {}
            for watch in batch:
                result = watch.result
                entry = recent.get(result.prompt_id) or self._history_entry(result.prompt_id)
                result.create_time = server_timings(entry)["create_time"]
                if entry is not None and result.create_time is None:
                    self.stamps_create_time = False  # ComfyUI <= 0.3.64: never ask again
                self.events.prompt_done.fire(result=result)
                with self._lock:
                    self._watches.pop(result.prompt_id, None)
                with self._unfinished_cv:
                    self._unfinished.remove(watch)
                    self._unfinished_cv.notify_all()

    def _recent_history(self, max_items: int) -> dict:
        """prompt id -> entry for the newest `max_items` prompts (/api/jobs where present, else /history)."""
        try:
            if self.contract.jobs_api:
                answer = self.get_json(f"/api/jobs?limit={max_items}&sort_by=created_at&sort_order=desc")
                return {job["id"]: history_entry_from_job(job) for job in answer.get("jobs", []) if "id" in job}
            return self.get_json(f"/history?max_items={max_items}") or {}
        except (requests.RequestException, ValueError, AttributeError):
            return {}

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

    # ---- websocket receiver ----------------------------------------------------------------
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
        self._connected.set()

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
                self._connected.clear()
                self._orphan_watches(ws_client_id=self.client_id)
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
        watch = self._watches.get(data.get("prompt_id"))
        if watch is not None:
            watch.on_message(message.get("type"), data, received)

    def _tell_connection(self, state: str) -> None:
        self.events.connection_changed.fire(state=state, server=self.server)

    def _orphan_watches(self, ws_client_id: str) -> None:
        with self._lock:
            for watch in self._watches.values():
                if watch.result.client_id == ws_client_id:
                    watch.orphan()


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
