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

from comfyload.common.cli_exit import print_user_error
from comfyload.common.errors import UserError
from comfyload.harness import console, exact_stats, prometheus_exporter, webui
from comfyload.harness import gpu as gpu_locust
from comfyload.harness.distributed import MasterSide, role_of
from comfyload.harness.harness import ComfyHarness
from comfyload.harness.stopping import end_run, is_web_ui_run
from comfyload.harness.users import BookUser, OpenLoopUser, PromptUser  # noqa: F401  (Locust picks user classes up from here)
from comfyload.harness.webui_runs import UiSession, select_user_class
from comfyload.workloads import options

exact_stats.install()
console.install()  # Locust's tables in 100 columns
gpu_locust.install(events)  # GPU probe: samples, the gpu_sample hook, records
webui.install(events)  # ComfyLoad (live), SLA and GPU tabs; each UI test its own run folder
PROGRESS_EVERY_S = 5
# writes a web UI test's summary and report when it stops, in a child process (orchestration's step;
# the harness is handed it rather than naming a layer above itself)
FINISH_COMMAND = [sys.executable, "-m", "comfyload.orchestration.ui_session", "finish"]


@events.init_command_line_parser.add_listener
def add_options(parser):
    options.add_to_locust_parser(parser)


@events.init.add_listener
def on_locust_init(environment, **_kwargs):
    """A master receives its workers' records (distributed runs); a web UI session gives each test
    its own run folder."""
    if role_of(environment.runner) == "master":
        environment.comfyload_master = MasterSide(environment)
    environment.comfyload_ui = UiSession(environment, FINISH_COMMAND) if is_web_ui_run(environment) else None
    console.end_shape_runs_on_sigterm(environment)


@events.test_start.add_listener
def start_harness(environment, **_kwargs):
    """Builds this run's harness and checks the server before any user starts. A bad option,
    workflow or server stops the run with one clear line and exit code 2."""
    if getattr(environment, "comfyload", None) is not None:
        environment.comfyload.close()
    environment.comfyload = None
    select_user_class(environment)
    session = getattr(environment, "comfyload_ui", None)
    if session is not None:
        session.begin()
    try:
        harness = ComfyHarness(environment)
        harness.preflight()
    except UserError as exc:
        print_user_error(exc)
        if session is None:
            environment.process_exit_code = 2
        end_run(environment, f"failed: {exc}")  # headless: exit 2; web UI: the test stops, the UI says why
        return  # users see no harness and stop at once
    environment.comfyload = harness
    if harness.role == "master":
        environment.comfyload_master.start_test(harness)
    harness.recorder.event(
        "test.start", host=harness.host, workflow=harness.workflow.name, role=harness.role, worker=harness.worker
    )
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
    session = getattr(environment, "comfyload_ui", None)
    if harness is not None:

        def stop():
            if harness.role == "master":
                environment.comfyload_master.drain(
                    timeout=(environment.stop_timeout or 0) + 30, quit_workers=session is None
                )
            harness.close()  # waits for records still being finished
            harness.recorder.event("test.stop", prompts_recorded=harness.counts)
            harness.recorder.event("audit", **harness.audit)

        harness.stop_once(stop)  # test_stop can fire twice (run time ending mid-stop): audited once
        environment.comfyload = None
    if session is not None:  # this test's summary and report, its verdict kept on screen
        session.after_test(harness.recorder if harness is not None else None)


@events.quitting.add_listener
def let_csv_writer_catch_up(environment, **_kwargs):
    """Locust rewrites its CSVs once a second and not again at exit, so the last second of
    requests would be missing from them; one more pass keeps them equal to the records."""
    if environment.parsed_options and environment.parsed_options.csv_prefix:
        gevent.sleep(locust.stats.CSV_STATS_INTERVAL_SEC + 0.3)


prometheus_exporter.install(events)  # after the harness's hooks above: /metrics (harness/prometheus_exporter.py)
logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
