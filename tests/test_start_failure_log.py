"""A ComfyUI that dies while starting: the CLI prints one `error:` line, then the tail of the
server's log as lines of their own (seen on a real ComfyUI 0.3.64 checkout run with the 0.3.75
venv: its traceback came out as one line of literal "\\n"s).

The program under COMFYUI_DIR is no stand-in for ComfyUI: it is a process that writes a traceback
and exits at start, which is all this path of LocalComfyUI reads (its exit code and its log)."""

import socket

from conftest import run_cli

from comfyload.common.errors import UserError, error_text

DIES_AT_START = """\
import sys
print("Traceback (most recent call last):")
print('  File "main.py", line 1, in <module>')
print("ModuleNotFoundError: No module named 'comfyui_workflow_templates_core'")
sys.exit(3)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_quoted_lines_stay_lines_under_a_one_line_message():
    exc = UserError("it died\nearly", quoted="first\nsecond")
    assert str(exc) == "it died\\nearly", "the message itself stays one line"
    assert error_text(exc).splitlines() == ["error: it died\\nearly", "  | first", "  | second"]
    assert error_text(UserError("plain")) == "error: plain"


def test_a_server_dead_at_start_shows_its_log_tail_as_lines(tmp_path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "main.py").write_text(DIES_AT_START)
    proc = run_cli(
        "run",
        "--port",
        str(free_port()),
        "--jobs",
        "1",
        env={"COMFYUI_DIR": str(checkout), "COMFY_HOST": "", "COMFY_RUNS_DIR": str(tmp_path / "runs")},
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "ComfyUI exited with code 3 while starting" in errors[0], proc.stderr[-2000:]
    assert "\\n" not in proc.stderr, "no literal \\n: the tail is printed as lines"
    assert "  | ModuleNotFoundError: No module named 'comfyui_workflow_templates_core'" in proc.stderr.splitlines()
    assert "Traceback" not in errors[0]
