"""Books: profiles (workflows/books.yaml), and one book's pages rendered with the retry policy.
Runs without Locust: the caller passes a ComfyClient and gets page/book records and events.

The retry decision itself is retry.py.
"""

from __future__ import annotations

import difflib
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from comfyload.common.errors import UserError
from comfyload.common.paths import repo_path
from comfyload.common.records import CUT_OFF, FAILED, SUCCESS, event
from comfyload.common.yamlfile import read_mapping, refuse_unknown_keys
from comfyload.protocol.workload import WORKFLOWS_DIR, Workflow, load_workflow
from comfyload.workloads.retry import RetryPolicy

DEFAULT_PROFILES_FILE = WORKFLOWS_DIR / "books.yaml"


@dataclass
class BookProfile:
    name: str
    workflows: list[Workflow]
    pages: int

    def workflow_for(self, page: int) -> Workflow:
        return self.workflows[(page - 1) % len(self.workflows)]


@dataclass
class BookMix:
    """Weighted choice of profiles, e.g. small:2,medium:1."""

    profiles: list[BookProfile]
    weights: list[float]

    def pick(self, rng: random.Random) -> BookProfile:
        return rng.choices(self.profiles, weights=self.weights)[0]

    @property
    def all_workflows(self) -> list[Workflow]:
        return [wf for p in self.profiles for wf in p.workflows]


def load_book_mix(spec: str, profiles_file=DEFAULT_PROFILES_FILE) -> BookMix:
    path = repo_path(profiles_file)
    table = read_mapping(path, "book profiles file")
    profiles, weights = [], []
    for part in [p.strip() for p in str(spec).split(",") if p.strip()]:
        name, _, weight = part.partition(":")
        if name not in table:
            near = difflib.get_close_matches(name, list(table), n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise UserError(f"--book-profile: unknown profile {name!r} ({hint}known: {', '.join(sorted(table))})")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            w = -1
        if w <= 0:
            raise UserError(f"--book-profile: weight of {name} must be a number > 0, not {weight!r}")
        profiles.append(parse_profile(name, table[name], path))
        weights.append(w)
    if not profiles:
        raise UserError("--book-profile is empty")
    return BookMix(profiles, weights)


def parse_profile(name: str, entry, path: Path) -> BookProfile:
    if isinstance(entry, dict):  # a misspelt `page:` is named as such, before "needs pages"
        refuse_unknown_keys(entry, ("pages", "workflow", "workflows"), f"{path}: profile {name}")
    if not isinstance(entry, dict) or "pages" not in entry or not ({"workflow", "workflows"} & set(entry)):
        raise UserError(f"{path}: profile {name} needs `pages` and `workflow` (or `workflows`)")
    names = entry.get("workflows") or [entry["workflow"]]
    pages = entry["pages"]
    if not isinstance(pages, int) or pages < 1:
        raise UserError(f"{path}: profile {name}: pages must be an integer >= 1")
    return BookProfile(name=name, workflows=[load_workflow(resolve_relative(n, path)) for n in names], pages=pages)


def resolve_relative(name: str, profiles_path: Path) -> str:
    """Workflow names resolve in workflows/; a relative .json path, next to the profiles file."""
    candidate = profiles_path.parent / name
    return str(candidate) if name.endswith(".json") and candidate.exists() else name


@dataclass
class PageState:
    """The book app's page fields: retry_count, last_attempted_at, needs_regeneration, image_error."""

    book_id: str
    page: int
    workflow: str
    retry_count: int = 0
    last_attempted_at: float | None = None
    needs_regeneration: bool = False
    image_error: list = field(default_factory=list)
    prompt_ids: list = field(default_factory=list)
    intended_send_ts: float = 0.0
    done_ts: float | None = None
    outcome: str = "lost"

    def to_record(self) -> dict:
        return {
            "kind": "page",
            "book_id": self.book_id,
            "page": self.page,
            "workflow": self.workflow,
            "outcome": self.outcome,
            "retry_count": self.retry_count,
            "attempts": len(self.prompt_ids),
            "last_attempted_at": self.last_attempted_at,
            "needs_regeneration": self.needs_regeneration,
            "image_error": self.image_error,
            "prompt_ids": self.prompt_ids,
            "intended_send_ts": self.intended_send_ts,
            "done_ts": self.done_ts,
            "e2e_ms": None if self.done_ts is None else (self.done_ts - self.intended_send_ts) * 1000.0,
        }


class BookRun:
    """Renders one book: pages one after another (or in parallel), each retried per policy.
    `emit(record)` receives page/book records and events; `on_page(state)` each finished page."""

    def __init__(
        self,
        pick,
        profile: BookProfile,
        policy: RetryPolicy,
        rng: random.Random,
        timeout: float,
        emit,
        on_page=None,
        parallel: bool = False,
        download: bool = False,
        intended_start: float | None = None,
        graph_for=None,
        started=None,
        lateness_ms: float | None = None,
    ):
        # pick(book_id) -> the ComfyClient for the next attempt (a fleet routes per page or per book)
        self.pick, self.profile, self.policy, self.rng = pick, profile, policy, rng
        self.timeout, self.emit, self.on_page = timeout, emit, on_page
        self.parallel, self.download = parallel, download
        self.book_id = uuid.uuid4().hex[:12]
        self.intended_start = intended_start
        # how a page's graph is made: (graph, per-request uploads); the harness adds the uploads
        self.graph_for = graph_for or (lambda wf, context, client: (wf.parameterise(self.rng, context), []))
        self.started = started or (lambda kind: None)  # started(kind="page"|"book"): the audit's count
        self.lateness_ms = lateness_ms  # open loop: how long the book waited for a slot
        self.pages = {}

    def run(self) -> dict:
        """Renders every page; a book stopped with the run (the caller killed) still ends in one
        book record and a record for each of its pages, `cut_off` where unfinished."""
        start = self.intended_start or time.time()
        self.started(kind="book")
        self.pages: dict[int, PageState] = {}
        try:
            if self.parallel:
                run_together([lambda n=n: self.render_page(n, start) for n in range(1, self.profile.pages + 1)])
            else:
                for n in range(1, self.profile.pages + 1):
                    self.render_page(n, start if n == 1 else None)
        except BaseException:
            self.finish(start, cut_off=True)
            raise
        return self.finish(start)

    def finish(self, start: float, cut_off: bool = False) -> dict:
        now = time.time()
        for n in range(1, self.profile.pages + 1):  # pages never begun: accounted for all the same
            if n not in self.pages:
                self.started(kind="page")
                state = self.pages[n] = PageState(
                    book_id=self.book_id,
                    page=n,
                    workflow=self.profile.workflow_for(n).name,
                    intended_send_ts=now,
                    done_ts=now,
                    outcome=CUT_OFF,
                )
                self.emit(state.to_record())
        pages = [self.pages[n] for n in sorted(self.pages)]
        failed = [p.page for p in pages if p.outcome not in (SUCCESS, CUT_OFF)]
        outcome = CUT_OFF if cut_off else SUCCESS if not failed else FAILED
        book = {
            "kind": "book",
            "book_id": self.book_id,
            "profile": self.profile.name,
            "pages": len(pages),
            "pages_ok": sum(p.outcome == "success" for p in pages),
            "pages_failed": failed,
            "pages_cut_off": [p.page for p in pages if p.outcome == CUT_OFF],
            "outcome": outcome,
            "start_ts": start,
            "done_ts": now,
            "lateness_ms": self.lateness_ms,
            "retries": sum(p.retry_count for p in pages),
            "e2e_ms": (now - start) * 1000.0,
        }
        self.emit(book)
        self.emit(
            event(
                "book.done",
                book_id=self.book_id,
                profile=self.profile.name,
                outcome=book["outcome"],
                pages_failed=failed,
            )
        )
        return book

    def page_event(self, name: str, page: int, **fields) -> None:
        """A `book.page.*` event of this book (the catalogue: comfyload/common/records.py)."""
        self.emit(event(name, book_id=self.book_id, page=page, **fields))

    def render_page(self, number: int, intended_send_ts: float | None) -> PageState:
        wf = self.profile.workflow_for(number)
        state = PageState(
            book_id=self.book_id, page=number, workflow=wf.name, intended_send_ts=intended_send_ts or time.time()
        )
        self.pages[number] = state
        self.started(kind="page")
        try:
            self.attempt_until_done(state, wf)
        except BaseException:  # the run stopped while this page was in flight or waiting to retry
            state.outcome, state.done_ts = CUT_OFF, time.time()
            self.emit(state.to_record())
            raise
        self.emit(state.to_record())
        if self.on_page is not None:
            self.on_page(state)
        return state

    def attempt_until_done(self, state: PageState, wf: Workflow) -> None:
        number = state.page
        validation_failures = 0
        send_at = state.intended_send_ts
        while True:
            client = self.pick(self.book_id)
            graph, uploads = self.graph_for(wf, {"page_key": f"{self.book_id}-{number}"}, client)
            state.last_attempted_at = time.time()
            labels = {"book_id": self.book_id, "page": number, **({"uploads": uploads} if uploads else {})}
            result = client.run_prompt(
                graph,
                wf.name,
                timeout=self.timeout,
                intended_send_ts=send_at,
                download=self.download,
                attempt=state.retry_count + 1,
                extra=labels,
            )
            state.prompt_ids.append(result.prompt_id)
            state.outcome, state.done_ts = result.outcome, result.done_ts
            if result.ok:
                break
            validation_failures += result.outcome == "validation_error"
            state.image_error.append(
                {
                    "attempt": result.attempt,
                    "outcome": result.outcome,
                    "type": result.error_type,
                    "message": (result.error_message or "")[:500],
                    "node": result.error_node,
                    "ts": result.done_ts,
                }
            )
            self.page_event(
                "book.page.failed",
                number,
                attempt=result.attempt,
                outcome=result.outcome,
                error_type=result.error_type,
            )
            decision = self.policy.decide(result.outcome, state.retry_count, validation_failures)
            if not decision.retry:
                state.needs_regeneration = decision.needs_regeneration
                if state.needs_regeneration:
                    self.page_event(
                        "book.page.needs_regeneration",
                        number,
                        outcome=result.outcome,
                        retry_count=state.retry_count,
                    )
                break
            state.retry_count += 1
            self.page_event(
                "book.page.retry", number, retry=state.retry_count, delay_s=decision.delay_s, after=result.outcome
            )
            time.sleep(decision.delay_s)
            send_at = time.time()


def run_together(jobs) -> None:
    """Runs `jobs` at once and waits for all. Under Locust (gevent) they are greenlets, killed
    with the caller, so a stopped run leaves no page rendering behind; in a plain script, threads."""
    from gevent import monkey

    if monkey.is_module_patched("threading"):
        import gevent

        greenlets = [gevent.spawn(job) for job in jobs]
        try:
            gevent.joinall(greenlets, raise_error=True)
        finally:
            gevent.killall([g for g in greenlets if not g.dead])
        return
    errors = []
    threads = [threading.Thread(target=lambda job=job: _capture(job, errors)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _capture(job, errors: list) -> None:
    try:
        job()
    except BaseException as exc:  # re-raised by the caller
        errors.append(exc)
