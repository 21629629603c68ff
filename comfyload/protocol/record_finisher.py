"""A finished prompt's record completed in the background: create_time (the accept time) is only
in /history, written a moment after the terminal message, so the caller goes on at once and one
reader per client fills it in, then hands the record on (prompt_done)."""

from __future__ import annotations

import threading
import time

from comfyload.common.hooks import EventHook
from comfyload.protocol import prompt_lookup
from comfyload.protocol.prompt_watch import PromptWatch, Watches
from comfyload.protocol.results import PromptResult, server_timings

HISTORY_WRITE_WAIT_S = 5.0  # how long to wait for `executing` None before reading /history


class RecordFinisher:
    """`client` is what prompt_lookup asks the server through; `prompt_done` fires once per record."""

    def __init__(self, client, watches: Watches, prompt_done: EventHook):
        self._client = client
        self._watches = watches
        self._prompt_done = prompt_done
        # 0.3.75 stamps create_time (the accept time) in /history, 0.3.64 and 0.3.52 do not: learned
        # from the first finished entry, so a server without it is not asked again after each prompt
        self.stamps_create_time = True
        self._waiting: list[PromptWatch] = []  # finished prompts whose record waits for create_time
        self._waiting_cv = threading.Condition()
        self._reader = None

    def needs_create_time(self, result: PromptResult) -> bool:
        return (
            self.stamps_create_time
            and result.create_time is None
            and result.execution_start is not None
            and result.outcome not in ("timeout", "lost")
        )

    def finish_later(self, watch: PromptWatch) -> None:
        with self._waiting_cv:
            self._waiting.append(watch)
            if self._reader is None:
                self._reader = threading.Thread(target=self._finish_records, name="comfy-record-finisher", daemon=True)
                self._reader.start()

    def flush(self, timeout: float) -> None:
        """Waits until every finished prompt's record has been handed to prompt_done's listeners."""
        with self._waiting_cv:
            self._waiting_cv.wait_for(lambda: not self._waiting, timeout)

    def _finish_records(self) -> None:
        """create_time is only in /history: read it once the history is written, so queue wait =
        execution_start - create_time is exact; then hand the record on. One reader per client
        takes every record waiting and reads them with one GET /history?max_items=N (the newest
        entries): a request per prompt cost the server, and this process, about as much as a
        near-instant prompt itself. A prompt outside that window is read on its own. The reader
        ends when nothing waits; the next finished prompt starts another."""
        while True:
            with self._waiting_cv:
                if not self._waiting:
                    self._reader = None
                    return
                batch = list(self._waiting)
            for watch in batch:
                watch.history_written.wait(max(0.0, (watch.result.done_ts or 0) + HISTORY_WRITE_WAIT_S - time.time()))
            recent = prompt_lookup.recent_history(self._client, 2 * len(batch) + 16) if len(batch) > 1 else {}
            for watch in batch:
                result = watch.result
                entry = recent.get(result.prompt_id) or prompt_lookup.history_entry(self._client, result.prompt_id)
                result.create_time = server_timings(entry)["create_time"]
                if entry is not None and result.create_time is None:
                    self.stamps_create_time = False  # ComfyUI <= 0.3.64: never ask again
                self._prompt_done.fire(result=result)
                self._watches.discard(result.prompt_id)
                with self._waiting_cv:
                    self._waiting.remove(watch)
                    self._waiting_cv.notify_all()
