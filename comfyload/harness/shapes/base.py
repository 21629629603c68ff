"""What every load shape opens with: its own state reset when a run starts, and each tick handed
the run's options, this process's harness (None until it exists) and the time. A ramp holds one
level of users at a time, from --ramp-start."""

from __future__ import annotations

import time
from abc import abstractmethod

from locust import LoadTestShape


def spawn_at_once(users: int) -> tuple[int, int]:
    """Locust's (users, spawn rate): all of them within a second (a rate of at least 1)."""
    return users, max(users, 1)


class Shape(LoadTestShape):
    abstract = True  # Locust picks up only the shapes built on this

    def __init__(self):
        super().__init__()
        self.reset_time()

    def reset_time(self):
        super().reset_time()
        self.reset()

    def reset(self) -> None:
        """The shape's own state at the start of a run."""

    def tick(self):
        env = self.runner.environment
        return self.users_now(env.parsed_options, getattr(env, "comfyload", None), time.time())

    @abstractmethod
    def users_now(self, opts, harness, now: float):
        """Locust's (users, spawn rate) from now on, or None to end the run."""


class Ramp(Shape):
    """One level of users (books, or prompts in flight) at a time, from --ramp-start; each judged
    level's step event in `results`. live_view reads level and level_started."""

    abstract = True

    def reset(self) -> None:
        self.level = None
        self.level_started = None
        self.began = None
        self.results = {}  # users -> step event

    def users_now(self, opts, harness, now: float):
        if self.level is None:
            self.level, self.level_started, self.began = opts.ramp_start, now, now
        if harness is None:
            return self.hold()
        self.unit = "books" if harness.book_mix is not None else "prompts in flight"
        return self.climb(opts, harness, now)

    @abstractmethod
    def climb(self, opts, harness, now: float):
        """The ramp's own rule: hold, move to another level, or None once the knee is found."""

    def hold(self) -> tuple[int, int]:
        return spawn_at_once(self.level)

    def move_to(self, level: int) -> tuple[int, int]:
        self.level, self.level_started = level, time.time()
        return self.hold()
