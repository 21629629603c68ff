"""Fault drills: the schedule a fault scenario runs (proxy toxics, crashes, injected latency),
the crash controllers, and the events they leave in the run folder (`fault.start` /
`fault.end` with the fault's name, so reports can shade the windows).

Runs in the `python -m comfyload` process beside the Locust subprocess: nothing here loads the
generator. Injected latency is the exception: it changes the prompts, so the schedule turns it
into the harness option --inject-sleep."""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field

import requests

from comfyload.common.errors import UserError
from comfyload.common.yamlfile import refuse_unknown_keys
from comfyload.orchestration.faultproxy import FaultProxy, ToxiproxyServer, check_toxic

ACTIONS = ("proxy", "crash", "inject_sleep")


@dataclass
class Step:
    at: float
    action: str
    spec: dict
    duration: float | None = None  # `for`: seconds until the fault is undone


@dataclass
class FaultPlan:
    expected: str
    steps: list[Step]
    checks: list = field(default_factory=list)  # names, or {name: params}

    @property
    def uses_proxy(self) -> bool:
        return any(s.action == "proxy" for s in self.steps)

    @property
    def uses_crash(self) -> bool:
        return any(s.action == "crash" for s in self.steps)

    def inject_sleep_option(self) -> str:
        """The harness option for an `inject_sleep` step ("" when there is none)."""
        for s in self.steps:
            if s.action == "inject_sleep":
                return f"{s.at:g}-{s.at + (s.duration or 3600):g}:{float(s.spec['seconds']):g}"
        return ""


def parse_fault_plan(section, source: str) -> FaultPlan:
    if not isinstance(section, dict) or not isinstance(section.get("schedule"), list):
        raise UserError(f"{source}: fault needs a `schedule` list")
    refuse_unknown_keys(section, ("expected", "schedule", "checks"), f"{source}: fault", "fault key")
    steps = []
    for item in section["schedule"]:
        if isinstance(item, dict):
            refuse_unknown_keys(item, ("at", "for", *ACTIONS), f"{source}: fault schedule", "schedule key")
        actions = [a for a in ACTIONS if a in item] if isinstance(item, dict) else []
        if len(actions) != 1 or not _seconds(item.get("at")):
            raise UserError(f"{source}: schedule item {item!r} needs `at` (seconds) and one of {', '.join(ACTIONS)}")
        action, spec = actions[0], item[actions[0]]
        if action == "inject_sleep" and not isinstance(spec, dict):
            spec = {"seconds": spec}
        if not isinstance(spec, dict) and spec is not None:
            raise UserError(f"{source}: `{action}` in {item!r} must be a mapping of settings")
        spec = dict(spec or {})
        if action != "proxy":  # the proxy's toxic attributes are checked by check_toxic
            known = ("seconds",) if action == "inject_sleep" else ("restart_after",)
            refuse_unknown_keys(spec, known, f"{source}: fault schedule {action}", "setting")
        numbers = {
            "for": item.get("for", 0),
            "inject_sleep seconds": spec.get("seconds", 1) if action == "inject_sleep" else 1,
            "restart_after": spec.get("restart_after", 0),
        }
        bad = [name for name, value in numbers.items() if not _seconds(value)]
        if bad:
            raise UserError(f"{source}: schedule item {item!r}: {', '.join(bad)} must be a number of seconds >= 0")
        if action == "proxy":
            attributes = {k: v for k, v in spec.items() if k not in ("type", "stream", "toxicity")}
            check_toxic(spec.get("type"), spec.get("stream", "downstream"), attributes)
        steps.append(Step(at=float(item["at"]), action=action, spec=spec, duration=item.get("for")))
    return FaultPlan(
        expected=str(section.get("expected", "")),
        steps=sorted(steps, key=lambda s: s.at),
        checks=list(section.get("checks") or []),
    )


def _seconds(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


class LocalCrash:
    """Kills the local ComfyUI (SIGKILL to its process group, as a crash) and restarts it."""

    def __init__(self, server):
        self.server = server

    def crash(self) -> None:
        self.server.kill()

    def restart(self) -> None:
        self.server.start()


class HookCrash:
    """--crash-cmd / --restart-cmd for a remote or container ComfyUI; health = /system_stats."""

    def __init__(self, crash_cmd: str, restart_cmd: str, host: str, ready_timeout: float = 300):
        self.crash_cmd, self.restart_cmd, self.host, self.ready_timeout = crash_cmd, restart_cmd, host, ready_timeout

    def crash(self) -> None:
        subprocess.run(self.crash_cmd, shell=True, check=False)

    def restart(self) -> None:
        subprocess.run(self.restart_cmd, shell=True, check=False)
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            try:
                requests.get(self.host.rstrip("/") + "/system_stats", timeout=2).raise_for_status()
                return
            except requests.RequestException:
                time.sleep(0.5)


def make_proxy(host: str, toxiproxy: str | None):
    return (ToxiproxyServer(toxiproxy, host) if toxiproxy else FaultProxy(host)).start()


class FaultSchedule:
    """Carries out a plan's proxy and crash steps on a timer, writing fault.start/fault.end."""

    def __init__(self, plan: FaultPlan, recorder, proxy=None, crash_controller=None):
        self.plan, self.recorder, self.proxy, self.crasher = plan, recorder, proxy, crash_controller
        self._stop = threading.Event()
        self._threads = []

    def start(self) -> FaultSchedule:
        origin = time.monotonic()
        for step in self.plan.steps:
            if step.action == "inject_sleep":
                continue  # carried out by the harness
            t = threading.Thread(target=self._run_step, args=(step, origin), daemon=True, name=f"fault-{step.action}")
            t.start()
            self._threads.append(t)
        return self

    def _wait_until(self, origin: float, at: float) -> bool:
        return not self._stop.wait(max(0.0, origin + at - time.monotonic()))

    def _run_step(self, step: Step, origin: float) -> None:
        if not self._wait_until(origin, step.at):
            return
        if step.action == "proxy":
            spec = dict(step.spec)
            kind = spec.pop("type")
            name = self.proxy.add_toxic(
                kind, stream=spec.pop("stream", "downstream"), toxicity=spec.pop("toxicity", 1.0), **spec
            )
            self.recorder.event("fault.start", fault=f"proxy.{kind}", toxic=name, attributes=step.spec)
            self._wait_until(origin, step.at + (step.duration or 1e9))  # an early stop undoes it too
            self.proxy.remove_toxic(name)
            self.recorder.event("fault.end", fault=f"proxy.{kind}", toxic=name)
        elif step.action == "crash":
            self.crasher.crash()
            self.recorder.event("fault.start", fault="crash")
            self._stop.wait(float(step.spec.get("restart_after", 0)))
            self.crasher.restart()  # always: the run must not end with the server down
            self.recorder.event("fault.end", fault="crash")

    def stop(self, timeout: float = 330) -> None:
        """Undoes whatever is still on and waits for restarts to finish."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
