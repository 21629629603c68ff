"""Start, health-check and stop a local ComfyUI: the embedded default target.

Where the ComfyUI comes from, in order: `COMFYUI_DIR` (an existing checkout, run with
`COMFYUI_PYTHON` or its own venv), else the pinned 0.3.75 install in the per-user cache
(scripts/install_comfyui.sh, installed on first use). Each server gets its own work folder
(input/output/temp/user and custom_nodes with the drill pack linked in), so servers on different
ports and the shared install never write over each other.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from comfyload.common.cli_exit import run_cli
from comfyload.common.errors import UserError
from comfyload.common.paths import REPO
from comfyload.orchestration.measuring_flags import measuring_flags
from comfyload.orchestration.sd15_paths import extra_model_paths_yaml

INSTALL_SCRIPT = REPO / "scripts" / "install_comfyui.sh"
DRILL_PACK = REPO / "comfy_nodes"
DEFAULT_WORK_ROOT = REPO / ".comfyui"


def nvidia_gpu_present() -> bool:
    """True when an NVIDIA GPU is visible to the driver (so ComfyUI must not run with --cpu)."""
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "GPU" in out.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_pinned_install() -> Path:
    """Runs the installer (a no-op once cached) and returns the install folder."""
    proc = subprocess.run(["bash", str(INSTALL_SCRIPT)], stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise UserError(f"installing the local ComfyUI failed (exit {proc.returncode}); see the messages above")
    return Path(proc.stdout.strip().splitlines()[-1])


def comfyui_command() -> tuple[list[str], Path, bool]:
    """(python + main.py, code folder, is the pinned install)."""
    checkout = os.environ.get("COMFYUI_DIR")
    if checkout:
        code = Path(checkout).expanduser().resolve()
        if not (code / "main.py").is_file():
            raise UserError(f"COMFYUI_DIR={checkout} has no main.py: point it at a ComfyUI checkout")
        python = os.environ.get("COMFYUI_PYTHON") or next(
            (str(p) for p in (code / "venv/bin/python", code / ".venv/bin/python") if p.exists()), sys.executable
        )
        return [python, str(code / "main.py")], code, False
    install = ensure_pinned_install()
    return [str(install / "venv/bin/python"), str(install / "comfyui/main.py")], install / "comfyui", True


def prepare_work_dir(work_dir: Path) -> Path:
    """The server's own folders, with the drill pack linked into custom_nodes/."""
    for sub in ("custom_nodes", "input", "output", "temp", "user", "models"):
        (work_dir / sub).mkdir(parents=True, exist_ok=True)
    link = work_dir / "custom_nodes" / "comfyload_drills"
    if not link.exists():
        link.symlink_to(DRILL_PACK, target_is_directory=True)
    (work_dir / "extra_model_paths.yaml").write_text(f"comfyload:\n  custom_nodes: {work_dir / 'custom_nodes'}\n")
    # the locally made SD1.5 checkpoint's folder (comfyload/orchestration/sd15_paths.py), for every server
    (work_dir / "comfyload_models.yaml").write_text(extra_model_paths_yaml())
    return work_dir


class LocalComfyUI:
    """One ComfyUI process on 127.0.0.1, stopped by its pid (its whole process group)."""

    def __init__(
        self,
        port: int | None = None,
        work_dir: Path | None = None,
        listen: str = "127.0.0.1",
        extra_args: list[str] | None = None,
    ):
        self.port = port or 8188
        self.listen = listen
        self.work_dir = Path(work_dir or DEFAULT_WORK_ROOT / str(self.port)).resolve()
        self.extra_args = list(extra_args or [])
        self.process: subprocess.Popen | None = None
        self.log_path = self.work_dir / "comfyui.log"
        self.killed_on_purpose = False  # a crash drill's kill is no surprise to announce
        self.measuring: list[str] = []  # the flags ComfyLoad chose (measuring_flags.py)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        base, code, pinned = comfyui_command()
        prepare_work_dir(self.work_dir)
        args = base + [
            "--listen",
            self.listen,
            "--port",
            str(self.port),
            "--disable-auto-launch",
            "--database-url",
            "sqlite:///:memory:",
            "--extra-model-paths-config",
            str(self.work_dir / "comfyload_models.yaml"),
        ]
        if pinned:
            args += ["--base-directory", str(self.work_dir)]
        else:
            args += [
                "--extra-model-paths-config",
                str(self.work_dir / "extra_model_paths.yaml"),
                "--output-directory",
                str(self.work_dir / "output"),
                "--input-directory",
                str(self.work_dir / "input"),
                "--temp-directory",
                str(self.work_dir / "temp"),
            ]
        if not nvidia_gpu_present():
            args.append("--cpu")
        self.measuring = measuring_flags(code, self.extra_args)
        return args + self.measuring + self.extra_args

    def start(self, ready_timeout: float = 300.0) -> LocalComfyUI:
        if port_in_use(self.port):
            raise UserError(
                f"port {self.port} on 127.0.0.1 is already in use: stop what runs there, "
                f"or set COMFY_HOST to use that server"
            )
        args = self.command()
        self.killed_on_purpose = False
        log = open(self.log_path, "ab")
        print(
            f"[comfyui] starting on {self.url} with the measuring defaults {' '.join(self.measuring)} "
            f"(log: {self.log_path})",
            file=sys.stderr,
            flush=True,
        )
        self.process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=str(self.work_dir),
        )
        log.close()
        self.wait_ready(ready_timeout)
        return self

    def wait_ready(self, timeout: float) -> dict:
        """Polls /system_stats until it answers; fails fast with the log tail if the process dies."""
        started = time.monotonic()
        next_note = started + 10
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise UserError(
                    f"ComfyUI exited with code {self.process.returncode} while starting; "
                    f"the last lines of its log ({self.log_path}):",
                    quoted=self.log_tail(),
                )
            try:
                return requests.get(self.url + "/system_stats", timeout=2).json()
            except (requests.RequestException, ValueError):
                pass
            now = time.monotonic()
            if now - started > timeout:
                self.stop()
                raise UserError(f"ComfyUI did not answer /system_stats within {timeout:.0f} s; log: {self.log_path}")
            if now >= next_note:
                print(f"[comfyui] waiting for {self.url} ... {now - started:.0f} s", file=sys.stderr, flush=True)
                next_note = now + 10
            time.sleep(0.5)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def kill(self) -> None:
        """SIGKILL, as a crash would (fault drills)."""
        if self.process is not None and self.process.poll() is None:
            self.killed_on_purpose = True
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, grace: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.killed_on_purpose = True
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def add_target_arguments(parser, host_help: str, port_default: int | None, port_help: str) -> None:
    """--host/--server and --port: what comfy_target reads (a server given, or the local one on a port)."""
    parser.add_argument("--host", "--server", default=None, help=host_help)
    parser.add_argument("--port", type=int, default=port_default, help=port_help)


@contextlib.contextmanager
def comfy_target(args):
    """(host, local server or None): COMFY_HOST/--host, else the local ComfyUI on --port, stopped after."""
    if args.host:
        yield args.host, None
        return
    with LocalComfyUI(port=args.port) as server:
        yield server.url, server


class DeathWatch:
    """Says at once, in one line, when the local ComfyUI the harness started dies on its own
    (not by a crash drill or our stop), and records a `server.died` event in the run folder."""

    def __init__(self, server: LocalComfyUI, recorder, interval: float = 0.5):
        self.server, self.recorder, self.interval = server, recorder, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="comfyui-death-watch")

    def start(self) -> DeathWatch:
        self._thread.start()
        return self

    def _watch(self) -> None:
        announced = set()
        while not self._stop.wait(self.interval):
            process = self.server.process
            if process is None or process.pid in announced or process.poll() is None or self.server.killed_on_purpose:
                continue
            announced.add(process.pid)
            now = time.time()
            print(
                f"[comfyload] the local ComfyUI (pid {process.pid}) DIED at {time.strftime('%H:%M:%S')} with exit code "
                f"{process.returncode}; its log: {self.server.log_path}",
                file=sys.stderr,
                flush=True,
            )
            self.recorder.event(
                "server.died",
                ts=now,
                server=self.server.url,
                pid=process.pid,
                exit_code=process.returncode,
                log=str(self.server.log_path),
            )

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def exit_on_sigterm() -> None:
    """SIGTERM becomes a normal exit, so `finally` blocks stop the processes we started."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m comfyload.orchestration.server",
        description="Run the local ComfyUI (pinned 0.3.75, or COMFYUI_DIR) in the foreground; Ctrl-C stops it.",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("COMFY_PORT", 8188)),
        help="port on 127.0.0.1 (default 8188, env COMFY_PORT)",
    )
    parser.add_argument("--listen", default="127.0.0.1", help="address to bind (default 127.0.0.1: loopback only)")
    parser.add_argument(
        "--install-only", action="store_true", help="install the pinned ComfyUI into the cache and exit"
    )
    args = parser.parse_args(argv)
    return run_cli(lambda: serve_in_foreground(args))


def serve_in_foreground(args) -> int:
    """`--install-only`: the install folder; else the local ComfyUI until Ctrl-C or SIGTERM."""
    if args.install_only:
        print(ensure_pinned_install())
        return 0
    with LocalComfyUI(port=args.port, listen=args.listen) as server:
        print(f"[comfyui] ready at {server.url}; Ctrl-C stops it", file=sys.stderr, flush=True)
        exit_on_sigterm()
        with contextlib.suppress(KeyboardInterrupt):
            server.process.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
