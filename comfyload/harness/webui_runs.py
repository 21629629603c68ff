"""Runs started from the web UI: each test its own run folder, summary and report; why it stopped;
its final verdict kept on screen after the stop.

Headless runs get one run folder from `python -m comfyload run`, which writes the summary and the
report after Locust exits. A web UI session lives on across tests, so here each test start picks
a fresh folder, and each test stop writes its summary and report (in a child process: the report
draws charts, which would stall the gevent loop and the workers' heartbeats), copies this test's
part of Locust's CSVs into the folder, and keeps the verdict for the ComfyLoad tab.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import gevent

from comfyload.common.recorder import RUNS_ROOT, new_run_dir
from comfyload.common.ui_folders import SESSION_FILE, copy_csvs, read_outcome
from comfyload.harness.distributed import role_of
from comfyload.harness.users import USER_CLASSES_BY_NAME

CSV_SETTLE_S = 1.3  # Locust rewrites its CSVs once a second
FINISH_TIMEOUT_S = 300


def select_user_class(environment, name: str | None = None) -> None:
    """--user-class (a field on the start form) picks the class that runs this test. It must be
    set before Locust builds its dispatcher: in a local run and on a worker that is after
    test_start, on a master before it (webui.py calls this when the form is posted)."""
    opts = environment.parsed_options
    name = name or (getattr(opts, "user_class", None) if opts is not None else None)
    if name in USER_CLASSES_BY_NAME:
        environment.user_classes = [USER_CLASSES_BY_NAME[name]]


class UiSession:
    """On the master (or a local run) of a web UI session: the current test and the last one's
    outcome (folder, why it stopped, verdict, report). `finish_command`: the argv that writes a
    stopped test's summary and report, given RUN_DIR and SLA_FILE after it; the caller that starts
    the web UI names it, so the harness names nothing above itself."""

    def __init__(self, environment, finish_command: list[str]):
        self.environment = environment
        self.finish_command = list(finish_command)
        self.reason = None
        self.current = None  # {"run_dir", "started"} while a test runs
        self.last = None  # the last finished test, for the UI
        self.session_dir = None
        self.folders = {}  # run folder name -> path: what /comfyload/runs/ may serve
        self.quitting = False  # Locust is exiting: the wrapper finishes the folder after it
        environment.events.quitting.add_listener(self._on_quitting)

    def _on_quitting(self, **_kwargs) -> None:
        self.quitting = True
        self.note_stop("Locust quit (Ctrl-C, SIGTERM or the wrapper ending)")

    # ---- test start -----------------------------------------------------------------------
    def begin(self) -> None:
        """A fresh run folder for this test (its name says `distributed` on a master)."""
        opts = self.environment.parsed_options
        if self.session_dir is None:
            self.session_dir = Path(opts.run_dir) if opts.run_dir else None
        name = opts.scenario_name + ("-distributed" if role_of(self.environment.runner) == "master" else "")
        root = self.session_dir.parent if self.session_dir is not None else RUNS_ROOT
        opts.run_dir = str(new_run_dir(name, root))
        self.current = {"run_dir": opts.run_dir, "started": time.time()}
        self.folders[Path(opts.run_dir).name] = Path(opts.run_dir)
        self.reason = None
        if self.session_dir is not None:
            self.session_dir.mkdir(parents=True, exist_ok=True)
            with open(self.session_dir / SESSION_FILE, "a", encoding="utf-8") as f:
                f.write(f"{opts.run_dir}\t{self.current['started']:.3f}\n")

    def note_stop(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def fail(self, message: str) -> None:
        self.note_stop(f"failed: {message}")

    # ---- test stop --------------------------------------------------------------------------
    def after_test(self, recorder) -> None:
        """Records why the test stopped and finishes its folder in the background."""
        if self.current is None:
            return
        current, self.current = self.current, None
        reason = self.reason or "stopped"
        if recorder is not None:
            recorder.event("run.stop", reason=reason)
        self.last = {
            "run_dir": current["run_dir"],
            "name": Path(current["run_dir"]).name,
            "reason": reason,
            "started": current["started"],
            "stopped": time.time(),
            "state": "writing summary and report",
        }
        if not self.quitting:
            gevent.spawn(self._finish, current, self.last)

    def _finish(self, current: dict, last: dict) -> None:
        run_dir = Path(current["run_dir"])
        gevent.sleep(CSV_SETTLE_S)
        copy_csvs(getattr(self.environment.parsed_options, "csv_prefix", None), run_dir, current["started"])
        try:
            code = subprocess.run(
                [*self.finish_command, str(run_dir), self.environment.parsed_options.sla], timeout=FINISH_TIMEOUT_S
            ).returncode
        except subprocess.TimeoutExpired:
            code = None
        last.update(read_outcome(run_dir), exit_code=code, state="done")
        if last.get("report"):
            last["report_url"] = f"runs/{run_dir.name}/report.html"  # relative to /comfyload/live
