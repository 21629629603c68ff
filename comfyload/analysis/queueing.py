"""Capacity models, pure functions: how many books c ComfyUI servers carry within a p95, predicted
from measured service times instead of found by brute force.

A ComfyUI server executes one prompt at a time, first come first served, so a fleet is a FIFO
queue in front of c servers. A book is its pages in sequence: a page is submitted, waits,
executes, reaches the client after a small overhead, and only then is the next page submitted
(closed loop: `BookUser`), or books arrive on their own (open loop: `OpenLoopUser`). Failed
attempts are retried after the policy's backoff, the page latency counting from the first submit.

The simulation is a discrete-event one (exact for any service distribution, the measured samples
are drawn from as they are); `mva_single_server` is the textbook mean-value analysis, the check
that the simulation agrees with theory where theory is exact (exponential service)."""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Profile:
    """One kind of book: `pages[i]` holds the service-time samples (seconds) of page i's workflow."""

    name: str
    pages: tuple[tuple[float, ...], ...]
    weight: float = 1.0

    @property
    def mean_service_s(self) -> float:
        return sum(sum(p) / len(p) for p in self.pages)


@dataclass(frozen=True)
class Workload:
    profiles: tuple[Profile, ...]
    client_s: float = 0.0  # per attempt, outside the server: submit + websocket notice
    fail_p: float = 0.0  # probability an attempt fails (retried per the policy)
    max_retries: int = 3
    backoff_s: tuple[float, ...] = (15.0, 45.0, 90.0)  # the last value repeats
    pause_every_s: float = 0.0  # a server pauses this often between two prompts (ComfyUI's gc.collect()
    pause_s: float = 0.0  # every 10 s): periodic, so never two in one short window as i.i.d. draws would
    pause_samples: tuple[float, ...] = ()  # measured pause lengths, drawn from when given (else pause_s)

    def backoff(self, retry: int) -> float:
        return self.backoff_s[min(retry, len(self.backoff_s)) - 1] if self.backoff_s else 0.0

    def pick(self, rng: random.Random) -> Profile:
        if len(self.profiles) == 1:
            return self.profiles[0]
        return rng.choices(self.profiles, weights=[p.weight for p in self.profiles])[0]

    @property
    def mean_pages(self) -> float:
        total = sum(p.weight for p in self.profiles)
        return sum(p.weight * len(p.pages) for p in self.profiles) / total

    @property
    def mean_book_service_s(self) -> float:
        """Server time one book needs, retries included (each attempt costs a service time)."""
        total = sum(p.weight for p in self.profiles)
        attempts = sum(self.fail_p**k for k in range(self.max_retries + 1))
        return attempts * sum(p.weight * p.mean_service_s for p in self.profiles) / total


@dataclass(frozen=True)
class Point:
    """One predicted operating point."""

    servers: int
    load: float  # books in flight (closed) or books per hour (open)
    images_per_min: float
    p95_s: float
    p50_s: float
    error_pct: float
    pages: int  # pages measured by the simulation
    stable: bool = True  # open loop: offered load below capacity

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(order=True)
class _Event:
    t: float
    seq: int
    kind: str = field(compare=False)  # "submit" | "done"
    job: dict = field(compare=False)


class _Fleet:
    """c FIFO servers and the event loop that both simulations share."""

    def __init__(self, workload: Workload, servers: int, rng: random.Random):
        self.w, self.c, self.rng = workload, servers, rng
        self.events: list[_Event] = []
        self.queue: list[dict] = []
        self.q_head = 0
        self.idle = list(range(servers - 1, -1, -1))
        self.last_pause = [-math.inf] * servers
        self.seq = 0
        self.latencies: list[tuple[float, float, bool]] = []  # (done time, latency, ok)

    def at(self, t: float, kind: str, job: dict) -> None:
        self.seq += 1
        heapq.heappush(self.events, _Event(t, self.seq, kind, job))

    def new_page(self, t: float, book: dict) -> None:
        job = {"book": book, "page": book["next"], "start": t, "retry": 0}
        self.at(t, "submit", job)

    def arrive(self, t: float, job: dict) -> None:
        if self.idle:
            self.serve(t, job, self.idle.pop())
        else:
            self.queue.append(job)

    def serve(self, t: float, job: dict, server: int) -> None:
        samples = job["book"]["profile"].pages[job["page"]]
        service = samples[0] if len(samples) == 1 else self.rng.choice(samples)
        if self.w.pause_every_s > 0 and t - self.last_pause[server] >= self.w.pause_every_s:
            self.last_pause[server] = t
            service += self.rng.choice(self.w.pause_samples) if self.w.pause_samples else self.w.pause_s
        job["server"] = server
        self.at(t + service, "done", job)

    def finish(self, t: float, job: dict, on_page_done) -> None:
        server = job.pop("server")
        if self.q_head < len(self.queue):
            nxt = self.queue[self.q_head]
            self.q_head += 1
            if self.q_head > 4096:
                del self.queue[: self.q_head]
                self.q_head = 0
            self.serve(t, nxt, server)
        else:
            self.idle.append(server)
        failed = self.w.fail_p > 0 and self.rng.random() < self.w.fail_p
        seen = t + self.w.client_s
        if failed and job["retry"] < self.w.max_retries:
            job["retry"] += 1
            self.at(seen + self.w.backoff(job["retry"]), "submit", job)
            return
        self.latencies.append((seen, seen - job["start"], not failed))
        on_page_done(seen, job)

    def run(self, until_pages: int, on_page_done, horizon_s: float) -> None:
        while self.events and len(self.latencies) < until_pages:
            ev = heapq.heappop(self.events)
            if ev.t > horizon_s:
                break
            if ev.kind == "submit":
                self.arrive(ev.t, ev.job)
            else:
                self.finish(ev.t, ev.job, on_page_done)


def _point(fleet: _Fleet, servers: int, load: float, warmup: int, stable: bool = True) -> Point:
    measured = fleet.latencies[warmup:]
    if len(measured) < 2:
        return Point(servers, load, 0.0, math.inf, math.inf, 100.0, len(measured), False)
    start = fleet.latencies[warmup - 1][0] if warmup > 0 else 0.0
    span = max(measured[-1][0] - start, 1e-9)
    ok = [lat for _, lat, good in measured if good]
    lat = np.asarray(ok if ok else [math.inf], dtype=float)
    return Point(
        servers,
        load,
        60.0 * len(ok) / span,
        float(np.percentile(lat, 95)),
        float(np.percentile(lat, 50)),
        100.0 * (len(measured) - len(ok)) / len(measured),
        len(measured),
        stable,
    )


def simulate_closed(workload: Workload, books: int, servers: int, seed: int = 0, pages: int = 3000) -> Point:
    """`books` books always in flight (a finished book is replaced at once), `servers` FIFO servers.
    The first pages (until every book has cycled a few times) are the warm-up."""
    if books < 1 or servers < 1:
        raise ValueError("books and servers must be >= 1")
    rng = random.Random(seed)
    fleet = _Fleet(workload, servers, rng)
    warmup = max(pages // 5, 3 * books)

    def start_book(t: float) -> None:
        book = {"profile": workload.pick(rng), "next": 0}
        fleet.new_page(t, book)

    def page_done(t: float, job: dict) -> None:
        book = job["book"]
        book["next"] += 1
        if book["next"] < len(book["profile"].pages):
            fleet.new_page(t, book)
        else:
            start_book(t)

    for _ in range(books):
        start_book(0.0)
    fleet.run(warmup + pages, page_done, horizon_s=math.inf)
    return _point(fleet, servers, books, warmup)


def simulate_open(workload: Workload, books_per_hour: float, servers: int, seed: int = 0, pages: int = 3000) -> Point:
    """Books arrive as a Poisson process (M/G/c with each arrival a sequence of pages). Offered
    load at or above capacity is reported unstable: its p95 only grows with the run's length."""
    if books_per_hour <= 0 or servers < 1:
        raise ValueError("books_per_hour must be > 0 and servers >= 1")
    rng = random.Random(seed)
    rate = books_per_hour / 3600.0
    fleet = _Fleet(workload, servers, rng)
    warmup = pages // 5
    offered = rate * workload.mean_book_service_s / servers
    stable = offered < 1.0
    books_needed = int((warmup + pages) / max(workload.mean_pages, 1e-9)) + 2

    def page_done(t: float, job: dict) -> None:
        book = job["book"]
        book["next"] += 1
        if book["next"] < len(book["profile"].pages):
            fleet.new_page(t, book)

    t = 0.0
    for _ in range(books_needed):
        t += rng.expovariate(rate)
        fleet.new_page(t, {"profile": workload.pick(rng), "next": 0})
    fleet.run(warmup + pages, page_done, horizon_s=math.inf)
    return _point(fleet, servers, books_per_hour, warmup, stable)


def mva_single_server(mean_service_s: float, think_s: float, population: int) -> tuple[float, float]:
    """Exact mean-value analysis of one FIFO server with exponential service and a delay station
    (think time) in a closed loop: (throughput per second, mean response time) at `population`."""
    queue = 0.0
    throughput = response = 0.0
    for n in range(1, population + 1):
        response = mean_service_s * (1.0 + queue)
        throughput = n / (think_s + response)
        queue = throughput * response
    return throughput, response


def predict_closed(
    workload: Workload, max_books: int, max_servers: int, seed: int = 0, pages: int = 3000
) -> list[Point]:
    return [
        simulate_closed(workload, n, c, seed, pages) for c in range(1, max_servers + 1) for n in range(1, max_books + 1)
    ]


def knee(points: list[Point], servers: int, p95_target_s: float, error_budget_pct: float = 100.0) -> int:
    """The most books a ramp would find: the level below the first that breaks the SLA."""
    best = 0
    for p in sorted((p for p in points if p.servers == servers), key=lambda p: p.load):
        if p.p95_s > p95_target_s or p.error_pct > error_budget_pct or not p.stable:
            break
        best = int(p.load)
    return best


def servers_for_books(points: list[Point], books: int, p95_target_s: float, error_budget_pct: float = 100.0):
    """The fewest servers whose knee holds `books` simultaneous books (None: not within the grid)."""
    for c in sorted({p.servers for p in points}):
        if knee(points, c, p95_target_s, error_budget_pct) >= books:
            return c
    return None


def servers_for_rate(
    workload: Workload,
    books_per_hour: float,
    p95_target_s: float,
    max_servers: int,
    seed: int = 0,
    pages: int = 3000,
    error_budget_pct: float = 100.0,
):
    """The fewest servers that carry `books_per_hour` open arrivals within the p95: (c, Point),
    or (None, the last point tried)."""
    lower = max(1, math.ceil(books_per_hour / 3600.0 * workload.mean_book_service_s - 1e-9))
    point = None
    for c in range(lower, max_servers + 1):
        point = simulate_open(workload, books_per_hour, c, seed, pages)
        if point.stable and point.p95_s <= p95_target_s and point.error_pct <= error_budget_pct:
            return c, point
    return None, point
