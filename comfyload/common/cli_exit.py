"""How every ComfyLoad command line ends on a mistake a user can fix: one line on stderr
(`error: <message>`, a quoted log tail indented under it), exit 2, no traceback; Ctrl-C exits 130."""

from __future__ import annotations

import sys
from collections.abc import Callable

from comfyload.common.errors import UserError, error_text

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # what a shell reports for a process ended by Ctrl-C (128 + SIGINT)


def print_user_error(exc: UserError) -> None:
    """The one line (and any quoted lines) a UserError shows the user."""
    print(error_text(exc), file=sys.stderr, flush=True)


def run_cli(command: Callable[[], int]) -> int:
    """Runs a command line's body and returns its exit code: a UserError becomes its one line and
    exit 2, Ctrl-C exit 130 (a `finally` in the body has stopped what it started)."""
    try:
        return command()
    except UserError as exc:
        print_user_error(exc)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
