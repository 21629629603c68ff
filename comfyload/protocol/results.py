"""PromptResult: one submitted prompt, from intended send to done, and its outcome. Built from
the websocket messages or, after a socket drop, from the same status messages in /history."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from comfyload.common.records import PROMPT_OUTCOMES


@dataclass
class PromptResult:
    prompt_id: str
    client_id: str
    server: str
    workflow: str
    worker: str = ""
    attempt: int = 1
    outcome: str = "lost"
    error_type: str | None = None
    error_message: str | None = None
    error_node: str | None = None
    completion: str = "ws"  # ws | poll | history (reconciled after a socket drop)
    intended_send_ts: float = 0.0  # client epoch seconds
    sent_ts: float | None = None
    accepted_ts: float | None = None
    done_ts: float | None = None
    create_time: int | None = None  # server epoch ms (POST /prompt accepted)
    execution_start: int | None = None  # server epoch ms
    execution_end: int | None = None  # server epoch ms (execution_success / _error / _interrupted)
    download_ms: float | None = None
    submit_retries: int = 0  # POST /prompt retries after network errors
    node_ms: dict = field(default_factory=dict)  # node id -> ms, from `executing` transitions
    node_classes: dict = field(default_factory=dict)  # node id -> class_type
    cached_nodes: list = field(default_factory=list)
    outputs: list = field(default_factory=list)  # [{node, filename, subfolder, type}]
    progress: dict | None = None  # the last `progress` message: {node, value (step k), max (of n)}
    progress_messages: int = 0
    extra: dict = field(default_factory=dict)  # labels added by users (page, book, ...)

    def __setattr__(self, name, value):
        """An outcome outside the record contract (a typo in the client) fails where it is set."""
        if name == "outcome" and value not in PROMPT_OUTCOMES:
            raise ValueError(
                f"outcome {value!r} is not one of {', '.join(PROMPT_OUTCOMES)} (DESIGN.md's record contract)"
            )
        object.__setattr__(self, name, value)

    @property
    def ok(self) -> bool:
        return self.outcome == "success"

    @property
    def e2e_ms(self) -> float | None:
        """Intended send -> done (outputs downloaded when downloads are on): the SLA latency."""
        if self.done_ts is None:
            return None
        return (self.done_ts - self.intended_send_ts) * 1000.0

    @property
    def queue_wait_ms(self) -> int | None:
        if self.create_time is None or self.execution_start is None:
            return None
        return self.execution_start - self.create_time

    @property
    def execution_ms(self) -> int | None:
        if self.execution_start is None or self.execution_end is None:
            return None
        return self.execution_end - self.execution_start

    def to_record(self) -> dict:
        """The `prompt` line of comfyui_metrics.ndjson (kind first, derived figures included)."""
        record = {"kind": "prompt", **asdict(self)}
        extra = record.pop("extra")
        record.update(e2e_ms=self.e2e_ms, queue_wait_ms=self.queue_wait_ms, execution_ms=self.execution_ms)
        record.update(extra)
        return record


def apply_status_message(result: PromptResult, event: str, data: dict, prompt_nodes) -> bool:
    """Folds one of ComfyUI's status messages (live or from /history) into `result`.
    Returns True when the message is terminal for the prompt."""
    if event == "execution_start":
        result.execution_start = data.get("timestamp")
    elif event == "execution_cached":
        result.cached_nodes = list(data.get("nodes", []))
    elif event == "execution_success":
        result.execution_end = data.get("timestamp")
        all_cached = set(prompt_nodes) <= set(result.cached_nodes)
        result.outcome = "cached" if all_cached else "success"
        if all_cached:
            result.error_type = "cached"
            result.error_message = "every node was served from ComfyUI's cache"
        return True
    elif event == "execution_error":
        result.execution_end = data.get("timestamp")
        exception_type = str(data.get("exception_type", ""))
        result.outcome = "oom" if "OutOfMemoryError" in exception_type else "execution_error"
        result.error_type = exception_type or "execution_error"
        result.error_message = str(data.get("exception_message", "")).strip()
        result.error_node = f"{data.get('node_id')} ({data.get('node_type')})"
        return True
    elif event == "execution_interrupted":
        result.execution_end = data.get("timestamp")
        result.outcome = "interrupted"
        result.error_type = "interrupted"
        result.error_message = "execution interrupted"
        result.error_node = f"{data.get('node_id')} ({data.get('node_type')})"
        return True
    return False


def summarise_validation_error(body: dict) -> tuple[str, str, str | None]:
    """(error type, one-line message naming the nodes, first failing node) from a 400 answer."""
    error = body.get("error") or {}
    if not isinstance(error, dict):
        error = {"type": "validation_error", "message": str(error)}
    parts, first_node = [], None
    for node_id, node_error in sorted((body.get("node_errors") or {}).items()):
        first_node = first_node or f"{node_id} ({node_error.get('class_type')})"
        for e in node_error.get("errors", []):
            parts.append(f"node {node_id} ({node_error.get('class_type')}): {e.get('message')}: {e.get('details')}")
    message = "; ".join(parts) or f"{error.get('message', '')}: {error.get('details', '')}".strip(": ")
    return str(error.get("type") or "validation_error"), message, first_node


TERMINAL_MESSAGES = ("execution_success", "execution_error", "execution_interrupted")


def server_timings(entry: dict | None) -> dict:
    """Server epoch ms from a /history entry (or a job from /api/jobs in that shape): create_time
    (prompt[3] is extra_data: the accept time), execution_start, and execution_end (the terminal
    status message). The one reader of server timings, for the harness and the bench's yardstick."""
    prompt = (entry or {}).get("prompt") or []
    extra = prompt[3] if len(prompt) > 3 and isinstance(prompt[3], dict) else {}
    out = {"create_time": extra.get("create_time"), "execution_start": None, "execution_end": None}
    if (entry or {}).get("create_time") is not None:  # a job from /api/jobs (server_contract.history_entry_from_job)
        out["create_time"] = entry["create_time"]
    for kind, data in ((entry or {}).get("status") or {}).get("messages", []):
        if kind == "execution_start":
            out["execution_start"] = data.get("timestamp")
        elif kind in TERMINAL_MESSAGES:
            out["execution_end"] = data.get("timestamp")
    return out
