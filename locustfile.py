"""ComfyLoad's Locust entry point: user classes, options and the run's lifecycle hooks.

    locust -f locustfile.py --host http://127.0.0.1:8188 --workflow cpu_smoke

`python -m comfyload run|ui` (what `make baseline` and `make ui` call) wraps this with the local
ComfyUI, the run folder and the SLA verdict.
"""
import logging
import sys

import gevent
import locust.stats
from locust import events

from comfyload.common.errors import UserError
from comfyload.harness import exact_stats, webui
from comfyload.harness import gpu as gpu_locust
from comfyload.harness.distributed import MasterSide, role_of
from comfyload.harness.users import BookUser, ComfyHarness, OpenLoopUser, PromptUser  # noqa: F401  (Locust picks user classes up from here)
from comfyload.workloads import options

exact_stats.install()
gpu_locust.install(events)  # GPU probe: samples, the gpu_sample hook, records
webui.install(events)       # GPU and SLA tabs, /comfyload/gpu chart page
PROGRESS_EVERY_S = 5


@events.init_command_line_parser.add_listener
def add_options(parser):
    options.add_to_locust_parser(parser)


@events.init.add_listener
def on_locust_init(environment, **_kwargs):
    """A master receives its workers' records (distributed runs)."""
    if role_of(environment.runner) == "master":
        environment.comfyload_master = MasterSide(environment)


@events.test_start.add_listener
def start_harness(environment, **_kwargs):
    """Builds this run's harness and checks the server before any user starts. A bad option,
    workflow or server stops the run with one clear line and exit code 2."""
    if getattr(environment, "comfyload", None) is not None:
        environment.comfyload.close()
    environment.comfyload = None
    try:
        harness = ComfyHarness(environment)
        harness.preflight()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        environment.process_exit_code = 2
        gevent.spawn(environment.runner.quit)
        return  # users see no harness and stop at once
    environment.comfyload = harness
    if harness.role == "master":
        environment.comfyload_master.start_test(harness)
    harness.recorder.event("test.start", host=harness.host, workflow=harness.workflow.name, role=harness.role,
                           worker=harness.worker)
    if environment.parsed_options.headless:
        gevent.spawn(_print_progress, harness)


def _print_progress(harness: ComfyHarness) -> None:
    while harness is harness.environment.comfyload:
        gevent.sleep(PROGRESS_EVERY_S)
        print(harness.progress_line(), file=sys.stderr, flush=True)


@events.test_stopping.add_listener
def mark_load_end(environment, **_kwargs):
    """The end of the load window: dead time before it counts against throughput."""
    harness = getattr(environment, "comfyload", None)
    if harness is not None:
        harness.recorder.event("load.end", role=harness.role, worker=harness.worker)


@events.test_stop.add_listener
def stop_harness(environment, **_kwargs):
    harness = getattr(environment, "comfyload", None)
    if harness is not None:
        if harness.role == "master":
            environment.comfyload_master.drain(timeout=(environment.stop_timeout or 0) + 30)
        harness.close()  # waits for records still being finished
        harness.recorder.event("test.stop", prompts_recorded=harness.counts)
        harness.recorder.event("audit", **harness.audit)
        environment.comfyload = None


@events.quitting.add_listener
def let_csv_writer_catch_up(environment, **_kwargs):
    """Locust rewrites its CSVs once a second and not again at exit, so the last second of
    requests would be missing from them; one more pass keeps them equal to the records."""
    if environment.parsed_options and environment.parsed_options.csv_prefix:
        gevent.sleep(locust.stats.CSV_STATS_INTERVAL_SEC + 0.3)


logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
