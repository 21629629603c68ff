"""Open-loop arrivals: work arrives on its own schedule, not when the last request finished, so a
slow server cannot hide its queue (coordinated omission). Latency counts from the intended
arrival time; arrivals that wait for a free slot (in-flight cap) are counted late, those beyond
the backlog limit dropped (like k6's dropped_iterations)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from comfyload.common.errors import UserError

MODELS = ("poisson", "constant", "gamma")


@dataclass(frozen=True)
class ArrivalModel:
    kind: str  # poisson | constant | gamma
    rate: float  # arrivals per second
    gamma_cv: float = 2.0  # gamma only: coefficient of variation of the gaps (> 1 = bursty)

    def arrivals(self, rng: random.Random):
        """(gap, what arrived) pairs, endless; what = None: the run's own workflow or book
        (a trace, comfyload/workloads/trace.py, names it per arrival)."""
        for gap in self.gaps(rng):
            yield gap, None

    def gaps(self, rng: random.Random):
        """Endless inter-arrival gaps in seconds; every model has mean 1/rate."""
        mean = 1.0 / self.rate
        if self.kind == "constant":
            while True:
                yield mean
        elif self.kind == "poisson":
            while True:
                yield rng.expovariate(self.rate)
        else:
            shape = 1.0 / (self.gamma_cv**2)
            while True:
                yield rng.gammavariate(shape, mean / shape)


def arrival_model(kind: str, rate: float, gamma_cv: float) -> ArrivalModel:
    if kind not in MODELS:
        raise UserError(f"--arrival must be closed or one of {', '.join(MODELS)}, not {kind!r}")
    if rate <= 0:
        raise UserError(f"--arrival-rate must be > 0 arrivals per second for --arrival {kind}")
    if gamma_cv <= 0:
        raise UserError("--gamma-cv must be > 0")
    return ArrivalModel(kind, rate, gamma_cv)


@dataclass
class ArrivalCounts:
    scheduled: int = 0
    on_time: int = 0
    late: int = 0  # waited for a free slot (cap reached); latency still counts from intended time
    dropped: int = 0  # backlog limit reached: never sent

    def as_dict(self) -> dict:
        return dict(self.__dict__)
