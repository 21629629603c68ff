"""ComfyLoad in Locust's web UI: a GPU tab (latest sample per GPU), an SLA tab (the current window
and the run so far against sla.yaml, PASS green / FAIL red), and a live GPU chart page.

Locust's React UI takes extra tabs from `template_args["extended_tabs"/"extended_tables"]` and
their rows from `extended_stats` in the `/stats/requests` JSON it polls every 2 s while a run is
on; its own charts cannot be extended from Python, so the chart is a page of its own
(<web UI>/comfyload/gpu). Cells are plain text, so a few lines of script added to the index page
colour PASS/FAIL and link the chart page."""
from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path

from flask import Response, jsonify, request

from comfyload.analysis.metrics import calculate_metrics
from comfyload.harness.webui_workflow import allowed_folders, offered, refusal

LIVE_WINDOW_S = 300.0    # the SLA tab's "current window": renders started in the last 5 minutes
SLA_REFRESH_S = 2.0      # evaluate() over 200k records is not free: at most once per poll
CHART_PAGE = Path(__file__).with_name("webui_gpu.html")

TABS = [{"title": "GPU", "key": "gpu"}, {"title": "SLA", "key": "sla"}]
TABLES = [
    {"key": "gpu", "structure": [
        {"key": "gpu", "title": "GPU"}, {"key": "name", "title": "Name"}, {"key": "source", "title": "Source"},
        {"key": "util", "title": "Util % (gpu / mem)"}, {"key": "vram", "title": "VRAM MB (used / total)"},
        {"key": "comfy", "title": "ComfyUI MB"}, {"key": "torch", "title": "Torch MB (reserved / free)"},
        {"key": "power", "title": "Power W (draw / limit)"}, {"key": "temp", "title": "Temp °C"},
        {"key": "clocks", "title": "Clocks MHz (SM / mem)"}, {"key": "throttle", "title": "Throttle"},
        {"key": "pcie", "title": "PCIe gen×width (now / max)"}, {"key": "pcieio", "title": "PCIe MB/s (tx / rx)"},
        {"key": "fan", "title": "Fan %"}, {"key": "age", "title": "Age s"}]},
    {"key": "sla", "structure": [
        {"key": "metric", "title": "Metric"}, {"key": "target", "title": "Target (sla.yaml)"},
        {"key": "window", "title": f"Last {LIVE_WINDOW_S / 60:g} min"}, {"key": "windowstate", "title": "Window"},
        {"key": "run", "title": "Run so far"}, {"key": "runstate", "title": "Run"}]},
]
# Added to the index page: colour the verdict cells, link the chart page.
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
  window.addEventListener("load", () => {
    const a = document.createElement("a");
    a.id = "comfyload-gpu-chart"; a.href = "%(chart)s"; a.target = "_blank"; a.textContent = "GPU chart \\u2197";
    a.style.cssText = "position:fixed;left:16px;bottom:12px;z-index:2000;font:14px sans-serif;";
    document.body.appendChild(a);
  });
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
        rows.append({
            "gpu": str(gpu), "name": s.get("name") or "", "source": s.get("source") or "",
            "util": _pair(s.get("util_gpu"), s.get("util_mem")),
            "vram": _pair(s.get("mem_used_mb"), s.get("mem_total_mb")),
            "comfy": _num(s.get("comfy_mem_mb")), "torch": _pair(torch_reserved, torch_free),
            "power": _pair(s.get("power_w"), s.get("power_limit_w"), 1), "temp": _num(s.get("temp_c")),
            "clocks": _pair(s.get("sm_clock_mhz"), s.get("mem_clock_mhz")),
            "throttle": "" if s.get("throttle_reasons") is None else (", ".join(s["throttle_reasons"]) or "none"),
            "pcie": "" if gen is None and gen_max is None else f"{gen or '–'} / {gen_max or '–'}",
            "pcieio": _pair(s.get("pcie_tx_mb_s"), s.get("pcie_rx_mb_s"), 1), "fan": _num(s.get("fan_pct")),
            "age": _num(now - s["ts"], 1) if s.get("ts") else "",
        })
    return rows


def _started(record: dict) -> float:
    return record.get("intended_send_ts") or record.get("start_ts") or record.get("ts") or 0.0


def _state(passed) -> str:
    return {True: "PASS", False: "FAIL", None: "n/a"}[passed]


def _shown(verdict) -> str:
    return "not measured" if verdict.measured is None else f"{verdict.measured:.4g} {verdict.unit}"


def sla_rows(harness, now: float) -> list[dict]:
    """The metrics model over the harness's recent records: the last LIVE_WINDOW_S (no warm-up: the
    window is past it) and the whole run so far (with sla.yaml's warm-up)."""
    if harness is None:
        return [{"name": "none", "metric": "no run in progress"}]
    records = list(harness.recent)
    recent = [r for r in records if _started(r) >= now - LIVE_WINDOW_S]
    window = calculate_metrics(recent, replace(harness.sla, warmup_seconds=0, warmup_prompts=0)).sla
    run = calculate_metrics(records, harness.sla).sla
    return [{"name": w.metric, "metric": w.metric, "target": f"{w.comparison} {w.target:g} {w.unit}",
             "window": _shown(w), "windowstate": _state(w.passed), "run": _shown(r), "runstate": _state(r.passed)}
            for w, r in zip(window, run)]


class LiveTables:
    """The rows of both tabs, with the SLA evaluation cached for SLA_REFRESH_S."""

    def __init__(self, environment):
        self.environment = environment
        self.sla_cache = (None, 0.0, [])   # (harness, when, rows)

    def extended_stats(self) -> list[dict]:
        now = time.time()
        harness = getattr(self.environment, "comfyload", None)
        cached_harness, when, rows = self.sla_cache
        if cached_harness is not harness or now - when >= SLA_REFRESH_S:
            rows = sla_rows(harness, now)
            self.sla_cache = (harness, now, rows)
        return [{"key": "gpu", "data": gpu_rows(getattr(self.environment, "gpu_probe", None), now)},
                {"key": "sla", "data": rows}]


def gpu_json(environment, since: float) -> dict:
    probe = getattr(environment, "gpu_probe", None)
    if probe is None:
        return {"status": "no GPU probe in this process", "samples": []}
    return {"status": probe.status, "samples": [s for s in list(probe.history) if s.get("ts", 0) > since]}


def parse_since(text) -> float | None:
    """`?since=` of the chart data: absent = 0, else a finite number; None when it is not one."""
    if not text:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


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


def install(events) -> None:
    """Called once from the locustfile with `locust.events`."""
    events.init.add_listener(extend_web_ui)


def extend_web_ui(environment, web_ui=None, **_kwargs) -> None:
    if web_ui is None:
        return
    app = web_ui.app
    base = ((environment.parsed_options and environment.parsed_options.web_base_path) or "").rstrip("/")
    tables = LiveTables(environment)
    web_ui.template_args["extended_tabs"] = [*web_ui.template_args.get("extended_tabs", []), *TABS]
    web_ui.template_args["extended_tables"] = [*web_ui.template_args.get("extended_tables", []), *TABLES]

    @app.after_request
    def add_comfyload(response):
        if request.path == f"{base}/stats/requests" and response.is_json:
            body = response.get_json()
            others = [t for t in body.get("extended_stats", []) if t.get("key") not in ("gpu", "sla")]
            body["extended_stats"] = others + tables.extended_stats()
            response.set_data(json.dumps(body))
        elif request.path in (f"{base}/", base or "/") and response.mimetype == "text/html" and not response.direct_passthrough:
            page = response.get_data(as_text=True)
            response.set_data(page.replace("</body>", INDEX_SCRIPT % {"chart": f"{base}/comfyload/gpu"} + "</body>"))
        return response

    @web_ui.auth_required_if_enabled
    def chart_page():
        return Response(CHART_PAGE.read_text(encoding="utf-8"), mimetype="text/html")

    @web_ui.auth_required_if_enabled
    def chart_data():
        since = parse_since(request.args.get("since"))
        if since is None:
            return jsonify({"error": f"since must be a number of seconds (epoch), not {request.args.get('since')!r}"}), 400
        return jsonify(gpu_json(environment, since))

    guard_workflow_field(web_ui, environment, base)
    app.add_url_rule(f"{base}/comfyload/gpu", "comfyload_gpu", chart_page)
    app.add_url_rule(f"{base}/comfyload/gpu.json", "comfyload_gpu_json", chart_data)
