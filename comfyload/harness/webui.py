"""ComfyLoad in Locust's web UI: a live ComfyLoad tab (the tester's cockpit), an SLA tab (the
current window and the run so far against sla.yaml, PASS green / FAIL red) and a GPU tab (latest
sample per GPU, labelled by its source).

Locust's React UI takes extra tabs from `template_args["extended_tabs"/"extended_tables"]` and
their rows from `extended_stats` in the `/stats/requests` JSON it polls every 2 s while a run is
on. Its tabs are tables, so the ComfyLoad tab is a page of our own (<web UI>/comfyload/live,
charts drawn from /comfyload/live.json) that a few lines of script added to the index page show
in place of the tab's empty table; the same script colours PASS/FAIL. Each test started here has
its own run folder and report (comfyload/harness/webui_runs.py), served under /comfyload/runs/.

The live data itself is live_view.py, the figures analysis/live_figures.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import gevent
import requests as http
from flask import Response, abort, jsonify, request, send_from_directory

from comfyload.analysis.live_figures import run_verdicts, window_verdicts
from comfyload.harness.live_view import SAMPLE_EVERY_S, LiveState, ramp_view, snapshot
from comfyload.harness.webui_workflow import allowed_folders, offered, refusal
from comfyload.workloads.options import FORM_ORDER

LIVE_WINDOW_S = 300.0  # the SLA tab's "current window": renders started in the last 5 minutes
SLA_REFRESH_S = 2.0  # evaluate() over 200k records is not free: at most once per poll
LIVE_PAGE = Path(__file__).with_name("webui_live.html")
LIVE_TITLE = "ComfyLoad live"

TABS = [{"title": "ComfyLoad", "key": "comfyload"}, {"title": "SLA", "key": "sla"}, {"title": "GPU", "key": "gpu"}]
TABLES = [
    {
        "key": "gpu",
        "structure": [
            {"key": "gpu", "title": "GPU"},
            {"key": "name", "title": "Name"},
            {"key": "source", "title": "Source"},
            {"key": "util", "title": "Util % (gpu / mem)"},
            {"key": "vram", "title": "VRAM MB (used / total)"},
            {"key": "comfy", "title": "ComfyUI MB"},
            {"key": "torch", "title": "Torch pool MB (reserved total / free in it)"},
            {"key": "power", "title": "Power W (draw / limit)"},
            {"key": "temp", "title": "Temp °C"},
            {"key": "clocks", "title": "Clocks MHz (SM / mem)"},
            {"key": "throttle", "title": "Throttle"},
            {"key": "pcie", "title": "PCIe gen×width (now / max)"},
            {"key": "pcieio", "title": "PCIe MB/s (tx / rx)"},
            {"key": "fan", "title": "Fan %"},
            {"key": "age", "title": "Age s"},
        ],
    },
    {
        "key": "sla",
        "structure": [
            {"key": "metric", "title": "Metric"},
            {"key": "target", "title": "Target (sla.yaml)"},
            {"key": "window", "title": f"Last {LIVE_WINDOW_S / 60:g} min"},
            {"key": "windowstate", "title": "Window"},
            {"key": "run", "title": "Run so far"},
            {"key": "runstate", "title": "Run"},
        ],
    },
    {"key": "comfyload", "structure": [{"key": "note", "title": LIVE_TITLE}]},
]
# Added to the index page: colour the verdict cells; show the live page on the ComfyLoad tab.
INDEX_SCRIPT = """<script>
(function () {
  const COLOURS = {PASS: "#1b7f1b", FAIL: "#c62828"};
  function paint() {
    document.querySelectorAll("td").forEach(td => {
      const c = COLOURS[td.textContent.trim()];
      if (c && td.style.color !== c) { td.style.color = c; td.style.fontWeight = "bold"; }
    });
  }
  new MutationObserver(paint).observe(document.documentElement, {childList: true, subtree: true, characterData: true});
  function place() {
    let frame = document.getElementById("comfyload-live");
    const selected = document.querySelector("[role=tab][aria-selected=true]");
    const on = !!selected && selected.textContent.trim().toLowerCase() === "comfyload";
    const tabs = document.querySelector("[role=tablist]");
    if (!on || !tabs) { if (frame) frame.style.display = "none"; return; }
    if (!frame) {
      frame = document.createElement("iframe");
      frame.id = "comfyload-live"; frame.src = "%(live)s"; frame.title = "ComfyLoad live";
      frame.style.cssText = "position:absolute;border:0;background:#fff;z-index:1000;";
      document.body.appendChild(frame);
    }
    const r = tabs.getBoundingClientRect(), top = r.bottom + window.scrollY + 4;
    frame.style.display = "block"; frame.style.left = "0px"; frame.style.top = top + "px";
    frame.style.width = document.documentElement.clientWidth + "px";
    frame.style.height = Math.max(400, window.innerHeight - r.bottom - 8) + "px";
  }
  setInterval(place, 300);
  // Locust's page polls only while a test spawns or runs: a stop it first sees as "cleanup" (users
  // finishing their prompts) is never followed to "stopped", and the New button never comes.
  // When the header is stuck there and the test has stopped, reload the page.
  setInterval(async () => {
    const header = document.querySelector("header");
    if (!header || !/CLEANUP|STOPPING/.test(header.innerText)) return;
    try {
      const d = await (await fetch("%(live)s.json", {cache: "no-store"})).json();
      if (d.run && ["stopped", "idle"].includes(d.run.state)) location.reload();
    } catch (e) { /* the web UI is going away */ }
  }, 2000);
})();
</script>"""


def _num(value, digits: int = 0) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _pair(a, b, digits: int = 0) -> str:
    return "" if a is None and b is None else f"{_num(a, digits) or '–'} / {_num(b, digits) or '–'}"


def gpu_rows(probe, now: float) -> list[dict]:
    """One row per GPU from the probe's latest samples, or one row saying why there are none."""
    if probe is None:
        return [{"gpu": "", "name": "no GPU probe in this process (a worker?)"}]
    if not probe.latest:
        return [{"gpu": "", "name": probe.status}]
    rows = []
    for gpu in sorted(probe.latest, key=str):
        s = probe.latest[gpu]
        gen = None if s.get("pcie_gen") is None else f"{s['pcie_gen']}×{_num(s.get('pcie_width'))}"
        gen_max = None if s.get("pcie_gen_max") is None else f"{s['pcie_gen_max']}×{_num(s.get('pcie_width_max'))}"
        torch_reserved, torch_free = s.get("torch_vram_total_mb"), s.get("torch_vram_free_mb")
        rows.append(
            {
                "gpu": str(gpu),
                "name": s.get("name") or "",
                "source": s.get("source") or "",
                "util": _pair(s.get("util_gpu"), s.get("util_mem")),
                "vram": _pair(s.get("mem_used_mb"), s.get("mem_total_mb")),
                "comfy": _num(s.get("comfy_mem_mb")),
                "torch": _pair(torch_reserved, torch_free),
                "power": _pair(s.get("power_w"), s.get("power_limit_w"), 1),
                "temp": _num(s.get("temp_c")),
                "clocks": _pair(s.get("sm_clock_mhz"), s.get("mem_clock_mhz")),
                "throttle": "" if s.get("throttle_reasons") is None else (", ".join(s["throttle_reasons"]) or "none"),
                "pcie": "" if gen is None and gen_max is None else f"{gen or '–'} / {gen_max or '–'}",
                "pcieio": _pair(s.get("pcie_tx_mb_s"), s.get("pcie_rx_mb_s"), 1),
                "fan": _num(s.get("fan_pct")),
                "age": _num(now - s["ts"], 1) if s.get("ts") else "",
            }
        )
    return rows


def _started(record: dict) -> float:
    return record.get("intended_send_ts") or record.get("start_ts") or record.get("ts") or 0.0


def _state(passed) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a"}[passed]


def _shown(verdict) -> str:
    return "not measured" if verdict.measured is None else f"{verdict.measured:.4g} {verdict.unit}"


def _target(w) -> str:
    return f"{w['comparison']} {w['target']:g} {w['unit']}"


def sla_rows(harness, now: float, last: dict | None = None) -> list[dict]:
    """The live window (last LIVE_WINDOW_S, no warm-up) and the run so far (with sla.yaml's
    warm-up), both through live_figures. Between tests: the last test's final verdict."""
    if harness is None:
        if last and last.get("sla"):
            head = {
                "name": "last",
                "metric": f"last run {last['name']}: SLA verdict {last.get('verdict')}",
                "target": f"stopped: {last['reason']}",
            }
            return [head] + [
                {
                    "name": v["metric"],
                    "metric": v["metric"],
                    "target": _target(v),
                    "window": "",
                    "windowstate": "",
                    "run": "not measured" if v["measured"] is None else f"{v['measured']:.4g} {v['unit']}",
                    "runstate": _state(v["passed"]),
                }
                for v in last["sla"]
            ]
        if last:
            return [
                {
                    "name": "last",
                    "metric": f"last run {last['name']}: {last['state']}",
                    "target": f"stopped: {last['reason']}",
                }
            ]
        return [{"name": "none", "metric": "no run in progress"}]
    records = list(harness.recent)
    recent = [r for r in records if _started(r) >= now - LIVE_WINDOW_S]
    window = window_verdicts(recent, harness.sla)
    run = run_verdicts(records, harness.sla)
    return [
        {
            "name": w.metric,
            "metric": w.metric,
            "target": f"{w.comparison} {w.target:g} {w.unit}",
            "window": _shown(w),
            "windowstate": _state(w.passed),
            "run": _shown(r),
            "runstate": _state(r.passed),
        }
        for w, r in zip(window, run)
    ]


class LiveTables:
    """The rows of the table tabs, with the SLA evaluation cached for SLA_REFRESH_S."""

    def __init__(self, environment):
        self.environment = environment
        self.sla_cache = (None, 0.0, [])  # (harness, when, rows)

    def extended_stats(self) -> list[dict]:
        now = time.time()
        harness = getattr(self.environment, "comfyload", None)
        session = getattr(self.environment, "comfyload_ui", None)
        cached_harness, when, rows = self.sla_cache
        if cached_harness is not harness or now - when >= SLA_REFRESH_S or harness is None:
            rows = sla_rows(harness, now, session.last if session is not None else None)
            self.sla_cache = (harness, now, rows)
        return [
            {"key": "gpu", "data": gpu_rows(getattr(self.environment, "gpu_probe", None), now)},
            {"key": "sla", "data": rows},
            {"key": "comfyload", "data": [{"note": "the live view is below (or at /comfyload/live)"}]},
        ]


class Live:
    """The ComfyLoad tab's state on the master (or a local run): one LiveState per test, sampled
    every SAMPLE_EVERY_S while a test runs."""

    def __init__(self, environment):
        self.environment = environment
        self.state = None
        self.final = None  # the last document of the last test

    def run(self) -> None:
        while True:
            try:
                self.tick()
            except Exception as exc:  # the live view never takes the run down
                print(f"[comfyload] live view: {type(exc).__name__}: {exc}", flush=True)
            gevent.sleep(SAMPLE_EVERY_S)

    def tick(self) -> None:
        harness = getattr(self.environment, "comfyload", None)
        if harness is None or harness.role == "worker":
            return
        if self.state is None or self.state.harness is not harness:
            self.state = LiveState(harness)
        self.state.follow_events()
        self.state.sample_queue(lambda: queue_from_server(harness.host))
        self.document()  # keeps `final` current, so the charts outlive the test

    def document(self) -> dict:
        env, now = self.environment, time.time()
        harness = getattr(env, "comfyload", None)
        session = getattr(env, "comfyload_ui", None)
        state = self.state if self.state is not None and harness is not None and self.state.harness is harness else None
        last = session.last if session is not None else None
        if harness is None or state is None:
            if self.final is not None:  # the last test's charts stay on screen, with its verdict
                return {
                    **self.final,
                    "now": now,
                    "last": last,
                    "ramp": self.final.get("ramp"),
                    "run": {**self.final["run"], "state": "stopped"},
                }
            return {
                "now": now,
                "run": {"state": "idle", "started": None},
                "last": last,
                "series": [],
                "windows": {},
                "shaded": [],
                "queue": [],
                "gpu": {},
                "ramp": None,
                "targets": None,
            }
        state.follow_events()
        probe = getattr(env, "gpu_probe", None)
        gpu = list(probe.history) if probe is not None else []
        runner = env.runner
        run = {
            "state": runner.state if runner is not None else "?",
            "started": state.started,
            "name": Path(harness.recorder.run_dir).name,
            "users": runner.user_count if runner is not None else None,
            "in_flight": state.in_flight(),
            "elapsed_s": now - state.started,
            "jobs": harness.jobs_limit or None,
            "gpu_status": getattr(probe, "status", "no GPU probe"),
            "workers": runner.worker_count if harness.role == "master" else None,
        }
        steps = [e for e in state.events if e.get("name") == "ramp.step"]
        self.final = snapshot(
            list(harness.recent),
            state.events,
            gpu,
            list(state.queue),
            harness.sla,
            now,
            run,
            ramp_view(env.shape_class, steps, now),
            last,
        )
        return self.final


def queue_from_server(host: str):
    """ComfyUI's queue when this process holds no websocket (a master): GET /prompt."""
    try:
        return http.get(f"{host.rstrip('/')}/prompt", timeout=1.5).json()["exec_info"]["queue_remaining"]
    except Exception:
        return None


def guard_workflow_field(web_ui, environment, base: str) -> None:
    """The workflow field offers the allowed workflows, and a start with any other is refused
    in the UI (Locust shows the message), never read by the harness."""
    folders = allowed_folders(getattr(environment.parsed_options, "workflow", None))
    original = web_ui.update_template_args

    def update_template_args():
        original()
        field = web_ui.template_args.get("extra_options", {}).get("workflow")
        if field is not None:
            current = getattr(environment.parsed_options, "workflow", None)
            choices = offered(folders)
            field["choices"] = choices if current in choices or current is None else [current, *choices]

    web_ui.update_template_args = update_template_args

    @web_ui.app.before_request
    def refuse_foreign_workflow():
        if request.method == "POST" and request.path == f"{base}/swarm" and "workflow" in request.form:
            why = refusal(request.form.get("workflow"), folders)
            if why is not None:
                return jsonify({"success": False, "message": why, "host": environment.host})
        return None


def order_form_fields(web_ui) -> None:
    """The start form's "Custom parameters" in the order a tester sets them (the option table's
    FORM_ORDER), not alphabetical: Locust's page shows the fields in the order of their JSON,
    which Jinja's `tojson` sorts unless told not to."""
    original = web_ui.update_template_args

    def update_template_args():
        original()
        fields = web_ui.template_args.get("extra_options")
        if fields:
            rank = {name: i for i, name in enumerate(FORM_ORDER)}
            web_ui.template_args["extra_options"] = dict(
                sorted(fields.items(), key=lambda item: rank.get(item[0], len(rank)))
            )

    web_ui.update_template_args = update_template_args
    web_ui.app.jinja_env.policies["json.dumps_kwargs"] = {"sort_keys": False}


def install(events) -> None:
    """Called once from the locustfile with `locust.events`."""
    events.init.add_listener(extend_web_ui)


def extend_web_ui(environment, web_ui=None, **_kwargs) -> None:
    if web_ui is None:
        return
    app = web_ui.app
    base = ((environment.parsed_options and environment.parsed_options.web_base_path) or "").rstrip("/")
    tables = LiveTables(environment)
    live = Live(environment)
    gevent.spawn(live.run)
    web_ui.template_args["extended_tabs"] = [*web_ui.template_args.get("extended_tabs", []), *TABS]
    web_ui.template_args["extended_tables"] = [*web_ui.template_args.get("extended_tables", []), *TABLES]
    note_stop_reasons(environment, web_ui, base)

    @app.after_request
    def add_comfyload(response):
        if request.path == f"{base}/stats/requests" and response.is_json:
            body = response.get_json()
            others = [t for t in body.get("extended_stats", []) if t.get("key") not in ("gpu", "sla", "comfyload")]
            body["extended_stats"] = others + tables.extended_stats()
            response.set_data(json.dumps(body))
        elif (
            request.path in (f"{base}/", base or "/")
            and response.mimetype == "text/html"
            and not response.direct_passthrough
        ):
            page = response.get_data(as_text=True)
            response.set_data(page.replace("</body>", INDEX_SCRIPT % {"live": f"{base}/comfyload/live"} + "</body>"))
        return response

    @web_ui.auth_required_if_enabled
    def live_page():
        return Response(LIVE_PAGE.read_text(encoding="utf-8"), mimetype="text/html")

    @web_ui.auth_required_if_enabled
    def live_json():
        return Response(json.dumps(live.document(), default=str), mimetype="application/json")

    @web_ui.auth_required_if_enabled
    def run_file(name, filename):
        """A file of a run folder this session made (its report, charts, summary)."""
        session = getattr(environment, "comfyload_ui", None)
        folder = session.folders.get(name) if session is not None else None
        if folder is None:
            abort(404)
        return send_from_directory(folder, filename)

    guard_workflow_field(web_ui, environment, base)
    order_form_fields(web_ui)
    app.add_url_rule(f"{base}/comfyload/live", "comfyload_live", live_page)
    app.add_url_rule(f"{base}/comfyload/live.json", "comfyload_live_json", live_json)
    app.add_url_rule(f"{base}/comfyload/runs/<name>/<path:filename>", "comfyload_run_file", run_file)


def note_stop_reasons(environment, web_ui, base: str) -> None:
    """Why a test started here stopped: the Stop button, or the form's run time."""

    def note(reason: str) -> None:
        session = getattr(environment, "comfyload_ui", None)
        if session is not None:
            session.note_stop(reason)

    @web_ui.app.before_request
    def stop_button_and_user_class():
        if request.path == f"{base}/stop" and request.method == "POST":
            note("stopped from the web UI (Stop button)")
        elif request.path == f"{base}/swarm" and request.method == "POST" and request.form.get("user_class"):
            from comfyload.harness.webui_runs import select_user_class  # Locust-side (this module imports no Locust)

            select_user_class(environment, request.form["user_class"])  # a master dispatches before test_start

    stop_runners = web_ui._stop_runners

    def run_time_over():
        note(f"run time reached ({environment.parsed_options.run_time} s)")
        stop_runners()

    web_ui._stop_runners = run_time_over
