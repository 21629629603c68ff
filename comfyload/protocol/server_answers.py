"""What a target server said when asked the two questions every run starts with (/system_stats,
/object_info), as one clear line each: nobody there, something there that is not ComfyUI, or a
ComfyUI that will not describe its nodes."""

from __future__ import annotations

import requests

from comfyload.common.errors import UserError


def _first_line(exc) -> str:
    return (str(exc).splitlines() or [""])[0][:200]


def ask(client, path: str, timeout: float | None = None):
    """GET `path` as JSON; UserError for no answer, an HTTP error status or a body that is not JSON."""
    try:
        response = client.http.get(client.url(path), timeout=timeout or client.http_timeout)
    except requests.RequestException as exc:
        raise UserError(
            f"ComfyUI at {client.server} is not reachable: {type(exc).__name__}: {_first_line(exc)}"
        ) from None
    if response.status_code != 200:
        raise UserError(
            f"{client.server} answered but is not ComfyUI: GET {path} gave HTTP {response.status_code} "
            f"{response.reason or ''}".rstrip()
        )
    try:
        return response.json()
    except ValueError:
        kind = response.headers.get("content-type", "no content type").split(";")[0]
        raise UserError(f"{client.server} answered but is not ComfyUI: GET {path} gave {kind}, not JSON") from None


def system_stats(client) -> dict:
    """/system_stats, checked to be ComfyUI's (it names `system` and `devices`)."""
    stats = ask(client, "/system_stats")
    if (
        not isinstance(stats, dict)
        or not isinstance(stats.get("system"), dict)
        or not isinstance(stats.get("devices"), list)
    ):
        raise UserError(f"{client.server} answered but is not ComfyUI: its /system_stats has no system/devices")
    return stats


def object_info(client) -> dict:
    """/object_info: node class -> its declaration."""
    info = ask(client, "/object_info", timeout=max(client.http_timeout, 60))
    if not isinstance(info, dict) or not all(isinstance(v, dict) for v in info.values()):
        raise UserError(f"{client.server} answered but is not ComfyUI: its /object_info is not a map of node classes")
    return info
