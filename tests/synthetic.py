"""Synthetic run folders with known answers, in the exact shape the harness writes: for the
report benchmark (a 24-hour soak) and for tests whose figures are computed by hand."""

from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

from comfyload.common.recorder import METRICS_FILE

HISTORY_HEADER = (
    "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,"
    "99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,"
    "Total Average Response Time,Total Min Response Time,Total Max Response Time,Total Average Content Size"
)
STATS_HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
    "Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
)
FAILURES_HEADER = "Method,Name,Error,Occurrences,First Seen,Last Seen"
EXCEPTIONS_HEADER = "Count,Message,Traceback,Nodes"
NODES = {"1": "EmptyImage", "2": "ImageBlur", "3": "SaveImage"}


def prompt_record(
    send: float,
    done: float | None,
    outcome: str = "success",
    queue_ms: float = 0.0,
    node_ms: dict | None = None,
    workflow: str = "cpu_smoke",
    **extra,
) -> dict:
    """A `prompt` record as PromptResult.to_record writes it; execution fills the time after the
    queue wait, split over `node_ms` (default: all of it in node 2)."""
    create = int(send * 1000) if done is not None else None
    e2e = None if done is None else (done - send) * 1000.0
    start = None if done is None else create + int(queue_ms)
    end = None if done is None else int(done * 1000)
    execution = None if done is None else end - start
    record = {
        "kind": "prompt",
        "prompt_id": str(uuid.uuid4()),
        "client_id": "c0",
        "server": "http://127.0.0.1:8188",
        "workflow": workflow,
        "worker": "test:1",
        "attempt": 1,
        "outcome": outcome,
        "error_type": None if outcome == "success" else extra.pop("error_type", outcome),
        "error_message": None if outcome == "success" else extra.pop("error_message", f"{outcome} happened"),
        "error_node": None,
        "completion": "ws",
        "intended_send_ts": send,
        "sent_ts": send,
        "accepted_ts": send,
        "done_ts": done,
        "create_time": create,
        "execution_start": start,
        "execution_end": end,
        "download_ms": None,
        "node_ms": node_ms if node_ms is not None else ({"2": float(execution)} if execution else {}),
        "node_classes": dict(NODES),
        "cached_nodes": [],
        "outputs": [],
        "e2e_ms": e2e,
        "queue_wait_ms": None if done is None else int(queue_ms),
        "execution_ms": execution,
    }
    record.update(extra)
    return record


def history_row(ts: int, users: int, total: int, failures: int = 0) -> str:
    return f"{ts},{users},,Aggregated,1.0,0.0,100,100,100,100,100,100,100,100,100,100,100,{total},{failures},100,100.0,50,200,0"


def meta_for(name: str = "synthetic", sla: dict | None = None) -> dict:
    meta = {
        "created": "2026-01-01T00:00:00+0000",
        "scenario": name,
        "server": "http://127.0.0.1:8188",
        "parameters": {"num_users": 2, "workflow": "cpu_smoke", "run_time": 60},
        "comfyui": {
            "system_stats": {
                "system": {"comfyui_version": "0.3.75", "ram_total": 2**34},
                "devices": [{"name": "cpu", "type": "cpu"}],
            },
            "node_packs": {"classes": 500, "custom_node_packs": ["custom_nodes.comfyload_drills"]},
        },
        "workflow": {"name": "cpu_smoke", "file": "workflows/cpu_smoke.json", "sha256": "0" * 64},
        "suite": {"commit": "abc123", "locust": "2.47.0"},
        "host": {"hostname": "test", "platform": "Linux", "cpu_count": 2},
        "gpu": {"gpus": [], "driver": None},
    }
    if sla is not None:
        meta["sla"] = sla
    return meta


def write_run_folder(path, records: list[dict], history: list[str] | None = None, meta: dict | None = None) -> Path:
    """A complete run folder; `history` rows default to one per second across the records."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "meta.json").write_text(json.dumps(meta or meta_for()))
    with open(path / METRICS_FILE, "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    if history is None:
        times = [r["intended_send_ts"] for r in records if "intended_send_ts" in r]
        start, end = (int(min(times)), int(max(times)) + 1) if times else (0, 1)
        history = [history_row(t, 2, i) for i, t in enumerate(range(start, end + 1))]
    (path / "locust_stats_history.csv").write_text("\n".join([HISTORY_HEADER, *history]) + "\n")
    (path / "locust_stats.csv").write_text(STATS_HEADER + "\n,Aggregated,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0\n")
    (path / "locust_failures.csv").write_text(FAILURES_HEADER + "\n")
    (path / "locust_exceptions.csv").write_text(EXCEPTIONS_HEADER + "\n")
    return path


def write_soak(path, prompts: int = 1_000_000, seconds: int = 86_400, seed: int = 1) -> Path:
    """A 24-hour soak: `seconds` history rows, `prompts` full prompt records (0.5 % failures), a
    GPU sample a second and a fault with its recovery. Lines are formatted directly: json.dumps
    of a million records would take longer than the report."""
    path = Path(path)
    rng = random.Random(seed)
    t0 = 1_800_000_000
    write_run_folder(
        path,
        [],
        history=[history_row(t0 + s, 8, s * prompts // seconds) for s in range(seconds)],
        meta=meta_for("soak"),
    )
    step = seconds / prompts
    with open(path / METRICS_FILE, "w") as f:
        f.write(json.dumps({"kind": "event", "name": "test.start", "ts": t0}) + "\n")
        for i in range(prompts):
            send = t0 + i * step
            queue = rng.uniform(0.5, 3.0)
            n1, n2, n3 = rng.uniform(5, 10), rng.uniform(800, 4000), rng.uniform(5, 20)
            execution = (n1 + n2 + n3) / 1000.0
            done = send + queue + execution
            failed = rng.random() < 0.005
            outcome, etype, emsg = (
                ("execution_error", '"RuntimeError"', '"CUDA error: an illegal memory access"')
                if failed
                else ("success", "null", "null")
            )
            create, start, end = int(send * 1000), int((send + queue) * 1000), int(done * 1000)
            f.write(
                f'{{"kind":"prompt","prompt_id":"{i:032x}","client_id":"c{i % 8}","server":"http://10.0.0.5:8188",'
                f'"workflow":"book_medium","worker":"gpu-box:{i % 4}","attempt":1,"outcome":"{outcome}",'
                f'"error_type":{etype},"error_message":{emsg},"error_node":null,"completion":"ws",'
                f'"intended_send_ts":{send:.6f},"sent_ts":{send + 0.0005:.6f},"accepted_ts":{send + 0.004:.6f},'
                f'"done_ts":{done:.6f},"create_time":{create},"execution_start":{start},"execution_end":{end},'
                f'"download_ms":null,"node_ms":{{"4":{n1:.3f},"3":{n2:.3f},"9":{n3:.3f}}},'
                f'"node_classes":{{"4":"CheckpointLoaderSimple","3":"KSampler","9":"SaveImage"}},"cached_nodes":["4"],'
                f'"outputs":[{{"node":"9","kind":"images","filename":"page_{i:07d}_.png","subfolder":"comfyload","type":"output"}}],'
                f'"e2e_ms":{(done - send) * 1000:.3f},"queue_wait_ms":{start - create},"execution_ms":{end - start}}}\n'
            )
            if i % (prompts // seconds or 1) == 0:
                s = i * seconds // prompts
                f.write(
                    f'{{"kind":"gpu","ts":{t0 + s},"gpu":0,"name":"NVIDIA L40S","util_gpu":{rng.uniform(60, 100):.1f},'
                    f'"util_mem":{rng.uniform(20, 60):.1f},"mem_used_mb":{rng.uniform(18000, 30000):.0f},'
                    f'"mem_total_mb":46068,"power_w":{rng.uniform(200, 350):.1f},"power_limit_w":350,'
                    f'"temp_c":{rng.uniform(50, 80):.0f},"throttle_reasons":{json.dumps(["sw_power_cap"] if rng.random() < 0.05 else [])},'
                    f'"source":"nvml"}}\n'
                )
        f.write(json.dumps({"kind": "event", "name": "fault.start", "ts": t0 + 40_000, "fault": "kill_comfyui"}) + "\n")
        f.write(json.dumps({"kind": "event", "name": "fault.recovered", "ts": t0 + 40_060, "recovery_s": 60.0}) + "\n")
    return path
