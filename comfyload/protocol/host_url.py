"""A server URL (--host, COMFY_HOST, each entry of --comfy-hosts) parsed before it is used, so a
mistake in the flag is named as such instead of ending as "not reachable" or "answered but is not
ComfyUI", which sends the user to check the server. A reverse-proxy prefix (https://gw/comfy)
stays valid; an endpoint of ComfyUI's API given as the path (/prompt, /ws) is the mistake."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from comfyload.common.errors import UserError

# ComfyUI's own routes (server.py): the client appends them to the base URL itself.
ENDPOINTS = {
    "prompt",
    "ws",
    "system_stats",
    "object_info",
    "history",
    "queue",
    "view",
    "upload",
    "interrupt",
    "free",
    "embeddings",
    "extensions",
    "models",
    "features",
    "view_metadata",
}


def parse_host(text: str, source: str = "--host") -> str:
    """The base URL, `http://` added when no scheme is given; UserError naming `source` (the flag or
    the env var it came from) for anything that cannot be one ComfyUI server's base URL."""
    raw = str(text).strip()
    said = f"{source} {text!r}"
    if not raw:
        raise UserError(f"{said} is empty: give a URL like http://127.0.0.1:8188")
    if "," in raw:
        raise UserError(f"{said} names more than one server: --host takes one URL; a fleet goes in --comfy-hosts A,B")
    url = raw if "://" in raw else "http://" + raw
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        if "port" in str(exc).lower():
            raise UserError(f"{said}: the port must be a number from 1 to 65535") from None
        raise UserError(f"{said} is not a URL ({exc})") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise UserError(f"{said}: the scheme must be http or https, not {parts.scheme}")
    if not parts.hostname or any(c.isspace() for c in parts.netloc) or "@" in parts.netloc:
        raise UserError(f"{said} is not a URL like http://127.0.0.1:8188")
    if port is not None and not 1 <= port <= 65535:
        raise UserError(f"{said}: the port must be a number from 1 to 65535, not {port}")
    if parts.query or parts.fragment:
        raise UserError(f"{said}: give the server's base URL, without ?query or #fragment")
    segments = [s for s in parts.path.split("/") if s]
    for i, segment in enumerate(segments):
        if segment.lower() in ENDPOINTS:
            endpoint = "/" + "/".join(segments[i:])
            base = f"{parts.scheme}://{parts.netloc}" + "".join("/" + s for s in segments[:i])
            raise UserError(
                f"{said} ends in ComfyUI's endpoint {endpoint}: give the server's base URL ({base}); "
                "the suite adds /prompt, /ws and the rest itself"
            )
    return url.rstrip("/")


def host_from(flag_value: str | None) -> str | None:
    """--host if given, else COMFY_HOST, each parsed and named by where it came from; None: neither
    (the local ComfyUI is started)."""
    if flag_value:
        return parse_host(flag_value, "--host")
    env = os.environ.get("COMFY_HOST")
    return parse_host(env, "env COMFY_HOST") if env and env.strip() else None
