"""How a test ends for a reason (a job budget spent, a refused preflight, every worker done):
headless, Locust quits; in the web UI only the test stops. The harness, the master's side of a
distributed run and the Locust entry all stop a test this one way."""

from __future__ import annotations

import gevent


def is_web_ui_run(environment) -> bool:
    opts = environment.parsed_options
    return environment.web_ui is not None and opts is not None and not opts.headless


def end_run(environment, reason: str) -> None:
    """Ends the test for `reason`: headless, Locust quits (the wrapper then judges the run); in the
    web UI only the test stops, and the UI stays up for the next one."""
    session = getattr(environment, "comfyload_ui", None)
    if session is not None:
        session.note_stop(reason)
    if environment.runner is None:
        return
    gevent.spawn(environment.runner.quit if not is_web_ui_run(environment) else environment.runner.stop)
