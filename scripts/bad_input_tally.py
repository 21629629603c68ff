"""Tally of bad inputs (issue 15): each case runs a ComfyLoad CLI as a user would and counts
whether it ends in one clear line (`error: ...` on stderr, no traceback) and exit 2.

    .venv/bin/python -m scripts.bad_input_tally http://127.0.0.1:8188   # a running ComfyUI for preflight cases

Prints one row per case and the count. Not a test: a survey to re-run after changes."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082"
)


def stub(routes: dict) -> str:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            status, kind, body = routes.get(self.path.split("?")[0], (404, "text/html", b"not found"))
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def cases(host: str, tmp: Path) -> list[tuple[str, list[str], dict]]:
    def f(name, text):
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
        return str(path)

    stats = json.dumps({"system": {"comfyui_version": "x"}, "devices": []}).encode()
    no_object_info = stub({"/system_stats": (200, "application/json", stats)})
    plain = stub({"/": (200, "text/html", b"<html></html>")})
    json_api = stub({"/system_stats": (200, "application/json", b'{"ok": true}')})
    wf = '{"1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}}}'
    f("secret/id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----\n")
    f("in/wf.json", wf)
    f("in/wf.spec.yaml", "inputs:\n  - {node: '1', input: image, file: ../secret/id_rsa}\n")
    f("in2/wf.json", wf)
    f("in2/notes.png", "not an image")
    f("in2/wf.spec.yaml", "inputs:\n  - {node: '1', input: image, file: notes.png}\n")
    f("in3/wf.json", wf)
    f("in3/wf.spec.yaml", "inputs:\n  - {node: '1', input: image, file: link.png}\n")
    f("outside.png", PNG)
    if not (tmp / "in3/link.png").exists():
        (tmp / "in3/link.png").symlink_to(tmp / "outside.png")
    f(
        "intwf.json",
        '{"1": {"class_type": "EmptyImage", "inputs": {"width": "twelve", "height": 8, "batch_size": 1, "color": 0}},'
        ' "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}}}',
    )
    run = ["-m", "comfyload", "run", "--host", host]
    R = ["-m", "reports"]
    G = ["-m", "gpu_probe"]
    bad_run = tmp / "badrun"
    from tests.synthetic import prompt_record, write_run_folder

    good = [prompt_record(1000.0 + i, 1001.0 + i) for i in range(5)]
    write_run_folder(bad_run, [dict(r, e2e_ms="slow") if i == 2 else r for i, r in enumerate(good)], history=[])
    write_run_folder(tmp / "goodrun", good, history=[])
    (tmp / "nokind").mkdir(exist_ok=True)
    write_run_folder(tmp / "nokind", good + [{"x": 1}], history=[])
    return [
        # the list
        ("spec input ../secret/id_rsa", run + ["--workflow", str(tmp / "in/wf.json")], {}),
        ("spec input not an image", run + ["--workflow", str(tmp / "in2/wf.json")], {}),
        ("spec input symlink out", run + ["--workflow", str(tmp / "in3/wf.json")], {}),
        ("host 404s /object_info", ["-m", "comfyload", "run", "--host", no_object_info], {}),
        ("reports build, wrongly typed field", R + ["build", str(bad_run)], {}),
        ("reports compare, wrongly typed field", R + ["compare", str(tmp / "goodrun"), str(bad_run)], {}),
        ("gpu_probe record <dir>", G + ["record", str(tmp)], {}),
        ("empty SLA file", run + ["--sla", f("empty.yaml", "")], {}),
        ("gpu_probe record --duration -5", G + ["record", str(tmp / "g.ndjson"), "--duration", "-5"], {}),
        ("gpu_probe record --duration 0", G + ["record", str(tmp / "g.ndjson"), "--duration", "0"], {}),
        (
            "gpu_probe --comfy not ComfyUI",
            G + ["record", str(tmp / "g.ndjson"), "--duration", "1", "--comfy", json_api],
            {},
        ),
        ("plain HTTP server as host", ["-m", "comfyload", "run", "--host", plain], {}),
        ("YAML syntax error (scenario)", run + ["--scenario", f("sc.yaml", "users: [2\nrun_time: 5s\n")], {}),
        ("negative COMFY_CONCURRENCY", run, {"COMFY_CONCURRENCY": "-3"}),
        ("INT input given as text", run + ["--workflow", str(tmp / "intwf.json")], {}),
        # more of the same kind
        ("unreachable host", ["-m", "comfyload", "run", "--host", "http://127.0.0.1:9"], {}),
        ("host not a URL", ["-m", "comfyload", "run", "--host", "nota url"], {}),
        ("--run-time soon", run + ["--run-time", "soon"], {}),
        ("--run-time 0", run + ["--run-time", "0"], {}),
        ("--per-prompt-timeout -1", run + ["--per-prompt-timeout", "-1"], {}),
        ("--timeout 0", run + ["--timeout", "0"], {}),
        ("--timeout abc", run + ["--timeout", "abc"], {}),
        ("--jobs -1", run + ["--jobs", "-1"], {}),
        ("--jobs x", run + ["--jobs", "x"], {}),
        ("--concurrency 0", run + ["--concurrency", "0"], {}),
        ("--concurrency -4", run + ["--concurrency", "-4"], {}),
        ("--completion sse", run + ["--completion", "sse"], {}),
        ("--completion poll:x", run + ["--completion", "poll:x"], {}),
        ("--scenario nope", run + ["--scenario", "nope"], {}),
        ("--workflow nope", run + ["--workflow", "nope"], {}),
        ("--workflow a directory", run + ["--workflow", str(tmp)], {}),
        ("--workflow binary", run + ["--workflow", f("bin.json", b"\x80\x81\xff")], {}),
        ("--workflow invalid JSON", run + ["--workflow", f("bad.json", '{"1": ')], {}),
        ("--workflow UI format", run + ["--workflow", f("ui.json", '{"nodes": [], "links": []}')], {}),
        ("--workflow a list", run + ["--workflow", f("list.json", "[]")], {}),
        (
            "--workflow unknown class",
            run + ["--workflow", f("unk.json", '{"1": {"class_type": "NoSuch", "inputs": {}}}')],
            {},
        ),
        ("--workers -1", run + ["--workers", "-1"], {}),
        ("--route random", run + ["--route", "random"], {}),
        ("--comfy-hosts unreachable", run + ["--comfy-hosts", "http://127.0.0.1:9"], {}),
        ("--book-profile huge", run + ["--book-profile", "huge", "--user-class", "BookUser"], {}),
        ("--book-profile small:x", run + ["--book-profile", "small:x", "--user-class", "BookUser"], {}),
        (
            "--book-profiles garbage",
            run
            + ["--book-profiles", f("books.yaml", "small: 3\n"), "--user-class", "BookUser", "--book-profile", "small"],
            {},
        ),
        ("--sla missing", run + ["--sla", str(tmp / "nope.yaml")], {}),
        ("--sla latency soon", run + ["--sla", f("s1.yaml", "latency_p95_s: soon\n")], {}),
        ("--sla unknown key", run + ["--sla", f("s2.yaml", "latency: 3\n")], {}),
        ("--sla a list", run + ["--sla", f("s3.yaml", "- 1\n")], {}),
        ("--sla bad YAML", run + ["--sla", f("s4.yaml", "a: [\n")], {}),
        ("--sla a directory", run + ["--sla", str(tmp)], {}),
        ("--sla negative", run + ["--sla", f("s5.yaml", "error_budget_pct: -1\n")], {}),
        ("--sla compare bad", run + ["--sla", f("s6.yaml", "compare: {p95_pct: x}\n")], {}),
        ("--inject-sleep x", run + ["--inject-sleep", "x"], {}),
        ("--inject-sleep 40-20:3", run + ["--inject-sleep", "40-20:3"], {}),
        ("--retry-backoff-sec a,b", run + ["--retry-backoff-sec", "a,b"], {}),
        ("--max-retries -1", run + ["--max-retries", "-1"], {}),
        ("--arrival zipf", run + ["--user-class", "OpenLoopUser", "--arrival", "zipf"], {}),
        ("--arrival-rate 0", run + ["--user-class", "OpenLoopUser", "--arrival-rate", "0"], {}),
        ("--arrival-unit page", run + ["--user-class", "OpenLoopUser", "--arrival-unit", "page"], {}),
        ("--gpu-interval 0.01", run + ["--gpu-interval", "0.01"], {}),
        ("--user-class Nope", run + ["--user-class", "Nope"], {}),
        ("--outputs archive", run + ["--outputs", "archive"], {}),
        ("--output a directory", run + ["--output", str(tmp)], {}),
        ("--output unwritable", run + ["--output", "/proc/nope/out.json"], {}),
        ("scenario unknown key", run + ["--scenario", f("sc2.yaml", "userz: 2\n")], {}),
        ("scenario users text", run + ["--scenario", f("sc3.yaml", "users: many\n")], {}),
        ("scenario unknown shape", run + ["--scenario", f("sc4.yaml", "shape: Zigzag\n")], {}),
        ("scenario a list", run + ["--scenario", f("sc5.yaml", "- a\n")], {}),
        ("scenario fault bad schedule", run + ["--scenario", f("sc6.yaml", "fault: {schedule: [{at: x}]}\n")], {}),
        (
            "scenario fault unknown check",
            run + ["--scenario", f("sc7.yaml", "fault: {expected: x, schedule: [], checks: [nope]}\n")],
            {},
        ),
        ("scenario jobs text", run + ["--scenario", f("sc8.yaml", "jobs: lots\n")], {}),
        ("scenario bool option text", run + ["--scenario", f("sc9.yaml", "download: maybe\n")], {}),
        (
            "spec varying not in workflow",
            run + ["--workflow", f("v/wf.json", '{"1": {"class_type": "A", "inputs": {}}}')],
            {},
        ),
        ("COMFY_PORT abc", ["-m", "comfyload", "run"], {"COMFY_PORT": "abc", "COMFY_HOST": ""}),
        ("COMFY_JOBS x", run, {"COMFY_JOBS": "x"}),
        ("COMFY_TIMEOUT x", run, {"COMFY_TIMEOUT": "x"}),
        ("COMFY_DOWNLOAD maybe", run, {"COMFY_DOWNLOAD": "maybe"}),
        ("WORKERS x", run, {"WORKERS": "x"}),
        ("faults --only nope", ["-m", "comfyload", "faults", "--only", "nope", "--host", host], {}),
        ("reports build missing folder", R + ["build", str(tmp / "nope")], {}),
        ("reports build not a run folder", R + ["build", str(tmp / "in")], {}),
        ("reports build record without kind", R + ["build", str(tmp / "nokind")], {}),
        ("reports compare missing", R + ["compare", str(tmp / "nope"), str(tmp / "goodrun")], {}),
        (
            "reports compare bad --sla",
            R + ["compare", str(tmp / "goodrun"), str(tmp / "goodrun"), "--sla", f("s7.yaml", "compare: 3\n")],
            {},
        ),
        ("reports profile unknown workflow", R + ["profile", "nope", "--host", host], {}),
        ("gpu_probe --interval 0.01", G + ["record", str(tmp / "g.ndjson"), "--interval", "0.01"], {}),
        ("gpu_probe serve --port 70000", G + ["serve", "--port", "70000", "--comfy", host], {}),
        ("gpu_probe no source", G + ["record", str(tmp / "g.ndjson"), "--duration", "1"], {}),
        (
            "gpu_probe --comfy unreachable",
            G + ["record", str(tmp / "g.ndjson"), "--duration", "1", "--comfy", "http://127.0.0.1:9"],
            {},
        ),
        ("gpu_probe record unwritable", G + ["record", "/proc/nope/g.ndjson", "--duration", "1"], {}),
    ]


def main() -> int:
    host = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8188"
    tmp = Path(tempfile.mkdtemp(prefix="tally-"))
    env = {**os.environ, "COMFY_RUNS_DIR": str(tmp / "runs")}
    good = 0
    rows = cases(host, tmp)
    for name, argv, extra in rows:
        done = subprocess.run(
            [sys.executable, *argv], capture_output=True, text=True, timeout=120, cwd=str(REPO), env={**env, **extra}
        )
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error: ")]
        ok = done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr
        good += ok
        shown = errors[0] if errors else (lines[-1] if lines else "(nothing)")
        print(f"{'OK  ' if ok else 'BAD '} exit {done.returncode:<3} {name:<40} {shown[:150]}")
    print(f"\n{good} of {len(rows)} end in one clear line and exit 2")
    return 0


if __name__ == "__main__":
    sys.exit(main())
