"""What a run depends on beyond its inputs, checked before any load: ports in range, the web UI's
port free to bind, the GPU probe sidecar answering as a probe. Each was found only after the run
(a gevent traceback, or a whole test without GPU figures and exit 0)."""

from __future__ import annotations

import socket

import requests

from comfyload.common.errors import UserError
from comfyload.protocol.host_url import parse_host


def check_port(port, source: str) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise UserError(f"{source} must be a port from 1 to 65535, not {port!r}")


def check_bindable(host: str, port: int, source: str) -> None:
    """The web UI's address can be bound now (it is released at once, for Locust to bind)."""
    check_port(port, source)
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
    except OSError as exc:
        raise UserError(f"{source} {port}: cannot listen on {host}:{port} ({exc.strerror or exc})") from None


def check_gpu_probe(url: str, source: str = "--gpu-probe", timeout: float = 5.0) -> None:
    """A --gpu-probe URL must answer GET /latest as `python -m gpu_probe serve` does
    ({"source": ..., "samples": [...]}); otherwise the run would record no GPU figures."""
    if not url:
        return
    base = parse_host(url, source)
    try:
        answer = requests.get(base + "/latest", timeout=timeout)
    except requests.RequestException as exc:
        raise UserError(
            f"{source} {url}: no GPU probe answers there ({type(exc).__name__}); "
            "start one with `python -m gpu_probe serve`"
        ) from None
    try:
        body = answer.json() if answer.status_code == 200 else None
    except ValueError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("samples"), list) or "source" not in body:
        raise UserError(
            f"{source} {url} answered but is not a GPU probe (GET /latest gave HTTP {answer.status_code}, "
            "not a probe's samples); start one with `python -m gpu_probe serve`"
        )
