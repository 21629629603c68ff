"""Tally of bad inputs (issues 15 and 20): each case runs a ComfyLoad CLI as a user would and counts
whether it ends in one clear line (`error: ...` on stderr, no traceback), exit 2, no file created,
and (round two) says what names the mistake at its source.

    .venv/bin/python -m scripts.bad_input_tally http://127.0.0.1:8188   # a running ComfyUI for preflight cases

Prints one row per case and the count. Not a test: a survey to re-run after changes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.loopback_http import routes_handler, start

REPO = Path(__file__).resolve().parent.parent
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082"
)


def stub(routes: dict) -> str:
    """A loopback server answering GET paths from `routes`; it lives as long as the survey."""
    return start(routes_handler(routes))[1]


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
        *typed_after_run(
            run,
            "--run-time soon | --run-time 0 | --per-prompt-timeout -1 | --timeout 0 | --timeout abc | --jobs -1 | "
            "--jobs x | --concurrency 0 | --concurrency -4 | "
            "--completion sse | --completion poll:x | --scenario nope | --workflow nope",
        ),
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
    ] + round_two(host, tmp, f, run, plain)


def typed_after_run(run: list, typed: str) -> list:
    """Cases typed as `comfyload run --flag value`, given as one "|"-separated line: each is named by what was typed."""
    return [(case.strip(), run + case.split(), {}) for case in typed.split("|")]


def round_two(host: str, tmp: Path, f, run: list, plain: str) -> list:
    """Issue 20: realistic mistakes written apart from the first round. A fourth element is what
    the one line must say (the mistake named at its source)."""
    smoke = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
        "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 3, "sigma": 1.0}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "tally"}},
    }

    def graph(name, **nodes):
        g = json.loads(json.dumps(smoke))
        for node, value in nodes.items():
            node = node.lstrip("n")
            g.pop(node) if value is None else g.__setitem__(node, value)
        return f(f"graphs/{name}.json", json.dumps(g))

    latent = {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}}
    blur = smoke["2"]
    C = ["-m", "comfyload", "check"]
    wf = ["--workflow"]
    f("spec/wf.json", json.dumps(smoke))
    f("spec/wf.spec.yaml", "varyings:\n  - {node: '1', input: color, kind: nonce}\n")
    return [
        # the graph, checked as ComfyUI would, before load (run and check)
        (
            "graph: link to a missing node",
            run + wf + [graph("g1", n2={**blur, "inputs": {**blur["inputs"], "image": ["9", 0]}})],
            {},
            "links to node 9",
        ),
        (
            "graph: link to a missing output slot",
            run + wf + [graph("g2", n2={**blur, "inputs": {**blur["inputs"], "image": ["1", 4]}})],
            {},
            "output slot 4",
        ),
        (
            "graph: LATENT into IMAGE",
            run + wf + [graph("g3", n4=latent, n2={**blur, "inputs": {**blur["inputs"], "image": ["4", 0]}})],
            {},
            "expects IMAGE",
        ),
        (
            "graph: output missing required input",
            run + wf + [graph("g4", n3={"class_type": "SaveImage", "inputs": {}})],
            {},
            "required input missing",
        ),
        ("graph: no output node", run + wf + [graph("g5", n3=None)], {}, "no output node"),
        (
            "graph: a cycle",
            run
            + wf
            + [
                graph(
                    "g6",
                    n2={**blur, "inputs": {**blur["inputs"], "image": ["5", 0]}},
                    n5={"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
                )
            ],
            {},
            "form a cycle",
        ),
        (
            "graph: link not [node, slot]",
            run + wf + [graph("g7", n2={**blur, "inputs": {**blur["inputs"], "image": ["1"]}})],
            {},
            "a link must be",
        ),
        (
            "graph: missing input file",
            run
            + wf
            + [
                graph(
                    "g8",
                    n4={"class_type": "LoadImage", "inputs": {"image": "nope.png"}},
                    n2={**blur, "inputs": {**blur["inputs"], "image": ["4", 0]}},
                )
            ],
            {},
            "input file image='nope.png'",
        ),
        ("check: link to a missing node", C + [str(tmp / "graphs/g1.json"), "--host", host], {}, "links to node 9"),
        (
            "check: UI format",
            C + [f("graphs/ui.json", '{"nodes": [], "links": []}'), "--host", host],
            {},
            "Export (API)",
        ),
        (
            "check: several problems at once",
            C
            + [
                graph(
                    "g9",
                    n1={**smoke["1"], "inputs": {**smoke["1"]["inputs"], "width": 0}},
                    n3={"class_type": "SaveImage", "inputs": {}},
                )
            ],
            {"COMFY_HOST": host},
            "3 problems",
        ),
        # unknown or repeated keys, the nearest known key named
        ("spec key varyings", run + wf + [str(tmp / "spec/wf.json")], {}, "did you mean 'varying'"),
        (
            "scenario key twice",
            run + ["--scenario", f("r2/twice.yaml", "users: 2\nrun_time: 5s\nusers: 20\n")],
            {},
            "line 3: key 'users' is given twice",
        ),
        ("scenario key misspelt", run + ["--scenario", f("r2/typo.yaml", "user: 2\n")], {}, "did you mean 'users'"),
        ("SLA key misspelt", run + ["--sla", f("r2/sla.yaml", "latency_p95: 5\n")], {}, "did you mean 'latency_p95_s'"),
        (
            "SLA warmup key misspelt",
            run + ["--sla", f("r2/sla2.yaml", "latency_p95_s: 5\nwarmup: {second: 5}\n")],
            {},
            "did you mean 'seconds'",
        ),
        (
            "book profile key misspelt",
            run
            + [
                "--user-class",
                "BookUser",
                "--book-profile",
                "small",
                "--book-profiles",
                f("r2/books.yaml", "small: {workflow: cpu_smoke, page: 3}\n"),
            ],
            {},
            "did you mean 'pages'",
        ),
        (
            "fault schedule key misspelt",
            run + ["--scenario", f("r2/fault.yaml", "fault: {expected: x, schedule: [{at: 1, crash: {}, fro: 5}]}\n")],
            {},
            "did you mean 'for'",
        ),
        (
            "--book-profile misspelt",
            run + ["--user-class", "BookUser", "--book-profile", "smal"],
            {},
            "did you mean 'small'",
        ),
        # --host parsed before use
        (
            "--host ftp://",
            ["-m", "comfyload", "run", "--host", "ftp://127.0.0.1:8188"],
            {},
            "scheme must be http or https",
        ),
        ("--host port 99999", ["-m", "comfyload", "run", "--host", "http://127.0.0.1:99999"], {}, "port must be"),
        ("--host .../prompt", ["-m", "comfyload", "run", "--host", host + "/prompt"], {}, "endpoint /prompt"),
        ("--host .../ws", ["-m", "comfyload", "run", "--host", host + "/ws"], {}, "endpoint /ws"),
        ("--host A,B", ["-m", "comfyload", "run", "--host", f"{host},{host}"], {}, "more than one server"),
        ("--comfy-hosts with ftp://", run + ["--comfy-hosts", f"{host},ftp://x:1"], {}, "--comfy-hosts entry"),
        ("COMFY_HOST with /prompt", ["-m", "comfyload", "run"], {"COMFY_HOST": host + "/prompt"}, "env COMFY_HOST"),
        # ranges
        ("SLA error budget 150 %", run + ["--sla", f("r2/sla3.yaml", "error_budget_pct: 150\n")], {}, "0 to 100"),
        (
            "compare confidence 0.95",
            [
                "-m",
                "reports",
                "compare",
                str(tmp / "goodrun"),
                str(tmp / "goodrun"),
                "--sla",
                f("r2/sla4.yaml", "compare: {confidence_pct: 0.95}\n"),
            ],
            {},
            "write 95",
        ),
        ("--ramp-start > --ramp-max", run + ["--ramp-start", "9", "--ramp-max", "3"], {}, "must be <= --ramp-max"),
        ("--port 0", ["-m", "comfyload", "run", "--port", "0"], {"COMFY_HOST": ""}, "--port must be a port"),
        ("COMFY_PORT 70000", ["-m", "comfyload", "run"], {"COMFY_HOST": "", "COMFY_PORT": "70000"}, "env COMFY_PORT"),
        # what a run depends on, checked before load
        ("--gpu-probe not a probe", run + ["--gpu-probe", plain], {}, "is not a GPU probe"),
        ("--gpu-probe nothing there", run + ["--gpu-probe", "http://127.0.0.1:9"], {}, "no GPU probe answers"),
        ("ui --web-port 70000", ["-m", "comfyload", "ui", "--host", host, "--web-port", "70000"], {}, "--web-port"),
        (
            "ui --web-port taken",
            ["-m", "comfyload", "ui", "--host", host, "--web-port", str(taken_port())],
            {},
            "cannot listen",
        ),
        (
            "plan --json into a missing folder",
            ["-m", "comfyload", "plan", str(tmp / "goodrun"), "--json", str(tmp / "nope/dir/c.json")],
            {},
            "--json",
        ),
        (
            "refused run, --output in new folders",
            ["-m", "comfyload", "run", "--host", "http://127.0.0.1:9", "--output", str(tmp / "new/dir/out.json")],
            {},
            "not reachable",
        ),
        # the error names its source
        ("COMFY_USER_CLASS Nope", run, {"COMFY_USER_CLASS": "Nope"}, "env COMFY_USER_CLASS"),
        ("COMFY_JOBS -1", run, {"COMFY_JOBS": "-1"}, "env COMFY_JOBS"),
        ("COMFY_RUN_TIME soon", run, {"COMFY_RUN_TIME": "soon"}, "env COMFY_RUN_TIME"),
        (
            "scenario value with its line",
            run + ["--scenario", f("r2/jobs.yaml", "users: 2\njobs: -1\n")],
            {},
            "jobs.yaml line 2: jobs",
        ),
    ]


_HELD = []


def taken_port() -> int:
    """A port something listens on for the whole tally."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    _HELD.append(s)
    return s.getsockname()[1]


def files_under(folder: Path) -> set:
    return {p.relative_to(folder) for p in folder.rglob("*")}


def main() -> int:
    host = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8188"
    tmp = Path(tempfile.mkdtemp(prefix="tally-"))
    env = {**os.environ, "COMFY_RUNS_DIR": str(tmp / "runs")}
    good = 0
    rows = cases(host, tmp)
    for name, argv, extra, *must_say in rows:
        before = files_under(tmp)
        done = subprocess.run(
            [sys.executable, *argv], capture_output=True, text=True, timeout=120, cwd=str(REPO), env={**env, **extra}
        )
        created = files_under(tmp) - before
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("error: ")]
        said = all(text in (errors or [""])[0] for text in must_say)
        ok = done.returncode == 2 and len(errors) == 1 and "Traceback" not in done.stderr and said and not created
        good += ok
        shown = errors[0] if errors else (lines[-1] if lines else "(nothing)")
        why = (
            ""
            if ok
            else (f" [created {sorted(map(str, created))[:2]}]" if created else "")
            + ("" if said else f" [does not say {must_say[0]!r}]")
        )
        print(f"{'OK  ' if ok else 'BAD '} exit {done.returncode:<3} {name:<40} {shown[:150]}{why}")
    print(f"\n{good} of {len(rows)} distinct mistakes end in one clear line, exit 2, nothing created")
    return 0


if __name__ == "__main__":
    sys.exit(main())
