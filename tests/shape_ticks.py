"""The load shapes on their shared opening (comfyload/harness/shapes/base.py), ticked by hand on a made-up
clock: the users each returns, the step events a ramp emits, and that Locust finds exactly one
shape in each scenarios/shapes/*.py (the bases are abstract). Run by tests/test_shapes.py in a
process of its own: importing Locust patches the process with gevent, which pytest's must not be."""

import importlib.util
import types
from pathlib import Path

from locust.util.load_locustfile import is_shape_class

from comfyload.harness.shapes import base, soak, step_ramp
from comfyload.harness.shapes.base import Ramp, Shape
from comfyload.harness.shapes.spike import Spike
from comfyload.harness.shapes.step_ramp import StepRamp

REPO = Path(__file__).resolve().parent.parent


class Clock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def time(self) -> float:
        return self.now


class Harness:
    book_mix = None

    def __init__(self):
        self.events = []

    def emit(self, event: dict) -> None:
        self.events.append(event)


def step(harness, level, start, now):
    """A made-up step verdict: levels below 4 pass."""
    return {
        "kind": "event",
        "name": "ramp.step",
        "users": level,
        "passed": level < 4,
        "p95_s": float(level),
        "settled_ts": start,
        "end_ts": now,
        "images_per_min": 1.0,
    }


def made_up_clock() -> Clock:
    """A clock of its own and made-up step verdicts for the shapes."""
    clock = Clock()
    base.time = clock
    step_ramp.judge_step = soak.judge_step = step
    step_ramp.ramp_step_line = lambda *args: "step"
    return clock


def attach(shape, harness=None, **options):
    env = types.SimpleNamespace(parsed_options=types.SimpleNamespace(**options))
    if harness is not None:
        env.comfyload = harness
    shape.runner = types.SimpleNamespace(environment=env)
    return shape


def each_scenario_shape_file_holds_exactly_one_shape_and_the_bases_are_not_shapes():
    for path in sorted((REPO / "scenarios" / "shapes").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"shape_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert len([v for v in vars(module).values() if is_shape_class(v)]) == 1, path.name
    assert not is_shape_class(Shape) and not is_shape_class(Ramp)


def spike_holds_the_base_then_the_spike_then_the_base():
    made_up_clock()
    shape = attach(Spike(), spike_users=9, spike_base=0, spike_at=5.0, spike_duration=5.0)
    ticks = {}
    for t in (0.0, 4.9, 5.0, 9.9, 10.0):
        shape.get_run_time = lambda t=t: t
        ticks[t] = shape.tick()
    assert ticks == {0.0: (0, 1), 4.9: (0, 1), 5.0: (9, 9), 9.9: (9, 9), 10.0: (0, 1)}


def step_ramp_holds_each_level_then_stops_at_the_knee():
    clock = made_up_clock()
    harness = Harness()
    shape = attach(StepRamp(), harness, ramp_start=2, ramp_step=1, ramp_hold=10.0, ramp_max=6)
    levels = []
    while (users := shape.tick()) is not None:
        levels.append(users[0])
        clock.now += 5.0
    assert levels == [2, 2, 3, 3, 4, 4]  # a level is judged once held 10 s (on the third tick); 4 fails
    assert [e["users"] for e in harness.events if e["name"] == "ramp.step"] == [2, 3, 4]
    assert harness.events[-1]["name"] == "ramp.knee" and harness.events[-1]["users"] == 3


def a_ramp_holds_its_start_level_until_the_harness_exists():
    clock = made_up_clock()
    shape = attach(StepRamp(), None, ramp_start=3, ramp_step=1, ramp_hold=1.0, ramp_max=6)
    clock.now += 100.0
    assert shape.tick() == (3, 3) and shape.results == {}
    shape.reset_time()
    assert shape.level is None and shape.results == {}


def soak_emits_a_window_per_soak_window_and_drift_once_p95_rose():
    clock = made_up_clock()
    harness = Harness()
    p95s = iter([1.0, 1.05, 2.0])

    def window(harness, users, start, now):
        return {"kind": "event", "name": "ramp.step", "p95_s": next(p95s)}

    soak.judge_step = window
    shape = attach(soak.Soak(), harness, num_users=2, soak_window=60.0, soak_drift_pct=10.0)
    for _ in range(4):
        assert shape.tick() == (2, 2)
        clock.now += 60.0
    # the first tick opens the first window; 1.05 s is a 5 % rise (no drift), 2 s a 100 % one
    assert [e["name"] for e in harness.events] == ["soak.window", "soak.window", "soak.window", "soak.drift"]
    assert harness.events[3]["first_p95_s"] == 1.0 and harness.events[3]["p95_s"] == 2.0


CHECKS = [
    each_scenario_shape_file_holds_exactly_one_shape_and_the_bases_are_not_shapes,
    spike_holds_the_base_then_the_spike_then_the_base,
    step_ramp_holds_each_level_then_stops_at_the_knee,
    a_ramp_holds_its_start_level_until_the_harness_exists,
    soak_emits_a_window_per_soak_window_and_drift_once_p95_rose,
]

if __name__ == "__main__":
    for check in CHECKS:
        check()
        print(f"ok {check.__name__}")
