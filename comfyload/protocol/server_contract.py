"""What ComfyLoad relies on in ComfyUI's HTTP contract, across the versions its users run, in one
place: the form of the ids we make, which endpoints a server has (learned once from the server,
never guessed per call), and the mode it runs in (cache, assets, DynamicVRAM, attention).

Read from the server sources (repo Comfy-Org/ComfyUI) and the pinned 0.3.75:
- prompt ids: since PR #13998 (0.38.x; `server.py` @002c3fb9 `post_prompt`, `comfy_execution/jobs.py`
  @172be438 `validate_job_id`) a client-supplied `prompt_id` must be a UUID in canonical lowercase
  hyphenated form, else HTTP 400 `invalid_prompt_id`. 0.3.75 takes any string. We always send the
  canonical form, which both accept.
- `/api/jobs/{id}` (0.38.x; absent in 0.3.75 and 0.3.64): one job's `status` (pending, in_progress,
  completed, failed, cancelled), `create_time`, `execution_start_time`, `execution_end_time` (server
  epoch ms), and with it `execution_status` and `outputs` (the /history entry's `status` and
  `outputs`); 404 for an unknown id. `POST /api/jobs/{id}/cancel` interrupts a running job or
  dequeues a pending one atomically, `{"cancelled": bool}`. Older servers: /history, /queue and
  /interrupt.
- `/system_stats` `system.comfyui_version` and `system.argv` (the server's own start flags) in both;
  `/features` in both (0.38.x adds `assets`, the assets system's real state).
- the cache: 0.3.75 defaults to the classic cache; 0.38.1 to RAM pressure (`comfy/cli_args.py`
  @03294572 `--cache-ram`, `main.py`), which may answer from earlier prompts' results. Assets: none
  in 0.3.75; on by default in 0.38.1 (`--disable-assets`). DynamicVRAM: none in 0.3.75; on by
  default on NVIDIA in 0.38.1 (`--disable-dynamic-vram`; off with `--cpu`).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field

import requests

TERMINAL_JOB_STATUSES = ("completed", "failed", "cancelled")  # comfy_execution/jobs.py JobStatus
# what two runs' modes are compared on: not `argv` (ports and work folders differ run to run) and not
# the version (compared on its own, from /system_stats)
COMPARED_MODE_KEYS = ("cache", "assets", "dynamic_vram", "attention", "cpu", "jobs_api")
QUEUED_JOB_STATUSES = ("pending", "in_progress")
CACHE_FLAGS = {"--cache-classic": "classic", "--cache-none": "none", "--high-ram": "classic"}
ATTENTION_FLAGS = (
    "--use-split-cross-attention",
    "--use-quad-cross-attention",
    "--use-pytorch-cross-attention",
    "--use-sage-attention",
    "--use-flash-attention",
    "--use-ck-attention",
)
# The versions whose default we read in their source; between them the default is not known here.
CLASSIC_CACHE_DEFAULT_UP_TO = (0, 3, 75)
RAM_PRESSURE_CACHE_DEFAULT_FROM = (0, 38, 1)


def new_id() -> str:
    """A prompt or client id in the only form every ComfyUI accepts (canonical UUID)."""
    return str(uuid.uuid4())


def is_canonical_id(value) -> bool:
    """The server's rule (`comfy_execution/jobs.py` @172be438 `validate_job_id`)."""
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def version_tuple(version: str | None) -> tuple[int, ...] | None:
    try:
        return tuple(int(part) for part in str(version).split("+")[0].split(".")[:3])
    except ValueError:
        return None


@dataclass
class ServerContract:
    """One server's version, endpoints and mode, learned once (`learn`)."""

    version: str | None = None
    argv: list = field(default_factory=list)
    features: dict | None = None  # /features, or None where the server has none
    jobs_api: bool = False  # GET /api/jobs answers

    @classmethod
    def learn(cls, http: requests.Session, server: str, timeout: float = 10.0) -> ServerContract:
        """Three GETs; raises requests.RequestException / ValueError when the server cannot tell."""
        stats = http.get(server + "/system_stats", timeout=timeout)
        stats.raise_for_status()
        system = stats.json().get("system") or {}
        features = http.get(server + "/features", timeout=timeout)
        jobs = http.get(server + "/api/jobs?limit=1", timeout=timeout)
        return cls(
            version=system.get("comfyui_version"),
            argv=[str(a) for a in system.get("argv") or []],
            features=features.json() if features.status_code == 200 else None,
            jobs_api=jobs.status_code == 200 and isinstance(_json_or_none(jobs), dict),
        )

    # ---- the mode a server runs in (recorded in meta.json, compared between runs) ----------------
    def mode(self) -> dict:
        """Cache, assets, DynamicVRAM and attention as the server runs them, each from its start flags
        (`system.argv`) or, with no flag, the version's default; `null` where neither tells."""
        return {
            "comfyui_version": self.version,
            "cache": self._cache_mode(),
            "assets": self._assets(),
            "dynamic_vram": self._dynamic_vram(),
            "attention": next((a[6:] for a in self.argv if a in ATTENTION_FLAGS), "default"),
            "cpu": "--cpu" in self.argv,
            "jobs_api": self.jobs_api,
            "argv": self.argv[1:],
        }

    def _flag_value(self, flag: str) -> str | None:
        for i, arg in enumerate(self.argv):
            if arg == flag:
                following = self.argv[i + 1] if i + 1 < len(self.argv) else ""
                return "" if following.startswith("--") else following
            if arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
        return None

    def _cache_mode(self) -> str | None:
        for flag, mode in CACHE_FLAGS.items():
            if flag in self.argv:
                return mode
        lru = self._flag_value("--cache-lru")
        if lru and lru != "0":
            return f"lru:{lru}"
        if self._flag_value("--cache-ram") is not None:
            return "ram_pressure"
        version = version_tuple(self.version)
        if version is None:
            return None
        if version <= CLASSIC_CACHE_DEFAULT_UP_TO:
            return "classic"
        if version >= RAM_PRESSURE_CACHE_DEFAULT_FROM:
            return "ram_pressure"
        return None

    def _assets(self) -> bool | None:
        if isinstance(self.features, dict) and isinstance(self.features.get("assets"), bool):
            return self.features["assets"]
        if "--disable-assets" in self.argv:
            return False
        if "--enable-assets" in self.argv:
            return True
        version = version_tuple(self.version)
        return False if version is not None and version <= CLASSIC_CACHE_DEFAULT_UP_TO else None

    def _dynamic_vram(self) -> bool | None:
        if "--enable-dynamic-vram" in self.argv:
            return True
        if any(f in self.argv for f in ("--disable-dynamic-vram", "--cpu", "--highvram", "--gpu-only", "--novram")):
            return False
        version = version_tuple(self.version)
        return False if version is not None and version <= CLASSIC_CACHE_DEFAULT_UP_TO else None

    def as_dict(self) -> dict:
        return asdict(self)


def _json_or_none(response):
    try:
        return response.json()
    except ValueError:
        return None


def history_entry_from_job(job: dict) -> dict:
    """A /api/jobs/{id} answer in the shape of a /history entry (status messages, outputs) plus the
    job's own timings, so one reader (`results.server_timings`) serves both."""
    return {
        "status": job.get("execution_status") or {},
        "outputs": job.get("outputs") or {},
        "create_time": job.get("create_time"),
        "execution_start_time": job.get("execution_start_time"),
        "execution_end_time": job.get("execution_end_time"),
    }


def queue_holds(queue: dict, prompt_id: str) -> bool:
    """Whether a GET /queue answer holds the prompt, running or pending. Each item is the queue tuple
    (number, prompt_id, prompt, extra_data, outputs_to_execute) in every version read (0.38.x drops
    the sixth, `sensitive`, before answering: server.py @002c3fb9 `_remove_sensitive_from_queue`)."""
    items = (queue.get("queue_running") or []) + (queue.get("queue_pending") or [])
    return any(isinstance(item, list) and len(item) > 1 and item[1] == prompt_id for item in items)
