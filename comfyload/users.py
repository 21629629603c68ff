"""Locust users. PromptUser: one prompt per task, closed loop. The per-process state of a run
(workflow, shared websocket client, recorder, job budget) is a ComfyHarness kept on the Locust
environment, built when the test starts so options set in the web UI apply."""
from __future__ import annotations

import os
import random
import socket
import time

import gevent
from locust import User, constant, task
from locust.exception import StopUser

from comfyload.client import ComfyClient
from comfyload.meta import build_meta
from comfyload.recorder import RunRecorder, new_run_dir
from comfyload.results import PromptResult
from comfyload.sla import load_sla
from comfyload.workload import load_workflow, validate_against_server


class PromptFailed(Exception):
    """The Locust failure for a non-success outcome; its text (outcome: type: message) is what
    Locust groups failures by, so it holds no per-prompt ids."""

    def __init__(self, result: PromptResult):
        first_line = (result.error_message or "").strip().splitlines()[0:1]
        super().__init__(f"{result.outcome}: {result.error_type}: {first_line[0][:200] if first_line else ''}".rstrip(": "))
        self.result = result


class ComfyHarness:
    """Everything one process shares across its users for one test run."""

    def __init__(self, environment):
        self.environment = environment
        opts = environment.parsed_options
        self.options = {k: v for k, v in vars(opts).items() if not k.startswith("_")}
        self.host = environment.host or opts.host
        self.workflow = load_workflow(opts.workflow)
        self.sla = load_sla(opts.sla)
        self.timeout = opts.per_prompt_timeout
        self.download = opts.download
        self.completion = opts.completion
        self.rng = random.Random(opts.seed or None)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.recorder = RunRecorder(opts.run_dir or new_run_dir(opts.scenario_name))
        self.jobs_limit = opts.jobs
        self.jobs_taken = 0
        self.jobs_finished = 0
        self.counts = {"ok": 0, "failed": 0}
        self.started = time.time()
        self.shared_client = None if opts.ws_per_user else self.new_client()

    def preflight(self) -> None:
        """Refuses to start against a server that cannot run the workflow (raises UserError)."""
        client = self.shared_client or self.new_client()
        stats = client.check_reachable()
        object_info = client.object_info()
        validate_against_server(self.workflow.graph, object_info, self.workflow.name)
        self.recorder.write_meta(build_meta(self.options, self.host, stats, object_info, self.workflow, self.sla.as_dict()))
        if client is not self.shared_client:
            client.close()

    def new_client(self) -> ComfyClient:
        return ComfyClient(self.host, completion=self.completion, worker=self.worker,
                           on_result=self.record).start()

    def record(self, result: PromptResult) -> None:
        self.recorder.write(result.to_record())
        self.counts["ok" if result.ok else "failed"] += 1

    def take_job(self) -> bool:
        if self.jobs_limit and self.jobs_taken >= self.jobs_limit:
            return False
        self.jobs_taken += 1
        return True

    def finish_job(self) -> None:
        """After the last job of a --jobs run, stop the whole run (not just this user)."""
        self.jobs_finished += 1
        if self.jobs_limit and self.jobs_finished >= self.jobs_limit and self.environment.runner is not None:
            gevent.spawn(self.environment.runner.quit)

    def progress_line(self) -> str:
        in_flight = self.jobs_taken - self.jobs_finished
        return (f"[comfyload] {time.time() - self.started:6.0f} s: {self.counts['ok']} ok, "
                f"{self.counts['failed']} failed, {in_flight} in flight")

    def close(self) -> None:
        if self.shared_client is not None:
            self.shared_client.close()
        self.recorder.close()


def fire_request(environment, request_type: str, name: str, result: PromptResult, response_time: float) -> None:
    """One Locust entry; `events.request.measure` is not used (it swallows exceptions and
    records killed users as successes)."""
    environment.events.request.fire(
        request_type=request_type, name=name, response_time=response_time,
        response_length=len(result.outputs), response=None, context={"prompt_id": result.prompt_id},
        exception=None if result.ok else PromptFailed(result))


class PromptUser(User):
    """Submits one fresh prompt, waits for its result, and submits the next (closed loop)."""
    wait_time = constant(0)

    def on_start(self) -> None:
        self.harness: ComfyHarness = getattr(self.environment, "comfyload", None)
        if self.harness is None:  # the preflight refused this run
            raise StopUser()
        self.client = self.harness.shared_client or self.harness.new_client()

    def on_stop(self) -> None:
        if self.client is not self.harness.shared_client:
            self.client.close()

    @task
    def render(self) -> None:
        harness = self.harness
        if not harness.take_job():
            raise StopUser()
        try:
            result = self.client.run_prompt(harness.workflow.parameterise(harness.rng), harness.workflow.name,
                                            timeout=harness.timeout, download=harness.download)
        finally:
            harness.finish_job()
        fire_request(self.environment, "COMFY", harness.workflow.name, result, result.e2e_ms)
