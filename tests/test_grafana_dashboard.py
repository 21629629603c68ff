"""Unit: the Grafana board (infra/grafana/) and the exporter agree. Every PromQL expression in the
dashboard is parsed (promql-parser, and Prometheus' own parser through Debian's promtool) and
every metric it names is one the exporter serves; the exporter's exposition passes promtool's
naming lint; the provisioning files point at the dashboard and the datasource it uses."""

import json
import subprocess
from pathlib import Path

import promql_parser
import pytest
import yaml
from prometheus_client import generate_latest

from comfyload.harness.prometheus_metrics import ExporterMetrics, metric_names

REPO = Path(__file__).resolve().parent.parent
GRAFANA = REPO / "infra" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "comfyload.json"
PROMTOOL = Path("/usr/bin/promtool")
needs_promtool = pytest.mark.skipif(not PROMTOOL.exists(), reason="needs Debian's prometheus (`make prometheus`)")


def expressions(dashboard: dict) -> list[str]:
    """Every `expr` of every panel target and annotation query."""
    found = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", []) if "expr" in t]
    return found + [a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a]


def names_in(node) -> set[str]:
    """The metric names an expression's AST selects, however deeply they are nested."""
    if isinstance(node, promql_parser.VectorSelector):
        by_matcher = {m.value for m in node.matchers.matchers if m.name == "__name__"}
        return ({node.name} if node.name else set()) | by_matcher
    children = {
        promql_parser.MatrixSelector: lambda n: [n.vector_selector],
        promql_parser.AggregateExpr: lambda n: [n.expr] + ([n.param] if n.param is not None else []),
        promql_parser.BinaryExpr: lambda n: [n.lhs, n.rhs],
        promql_parser.Call: lambda n: list(n.args),
        promql_parser.ParenExpr: lambda n: [n.expr],
        promql_parser.UnaryExpr: lambda n: [n.expr],
        promql_parser.SubqueryExpr: lambda n: [n.expr],
    }
    for kind, of in children.items():
        if isinstance(node, kind):
            return set().union(*(names_in(c) for c in of(node)))
    assert isinstance(node, promql_parser.NumberLiteral | promql_parser.StringLiteral), type(node)
    return set()


@pytest.fixture(scope="module")
def dashboard():
    return json.loads(DASHBOARD.read_text())


def test_every_expression_names_only_metrics_the_exporter_serves(dashboard):
    served = metric_names()
    exprs = expressions(dashboard)
    assert len(exprs) >= 20
    named = set()
    for expr in exprs:
        names = names_in(promql_parser.parse(expr))
        assert names, f"{expr!r} selects no metric"
        assert names <= served, f"{expr!r} names {sorted(names - served)}, which the exporter does not serve"
        named |= names
    for wanted in (
        "comfyload_window_images_per_minute",
        "comfyload_sla_throughput_target_images_per_minute",
        "comfyload_run_latency_p95_seconds",
        "comfyload_sla_latency_p95_target_seconds",
        "comfyload_window_error_ratio",
        "comfyload_sla_error_budget_ratio",
        "comfyload_comfyui_queue_remaining",
        "comfyload_in_flight_prompts",
        "comfyload_gpu_utilization_ratio",
        "comfyload_gpu_memory_used_bytes",
        "comfyload_server_down",
    ):
        assert wanted in named, f"the board mirrors the report: {wanted}"


def test_the_name_check_catches_a_misspelt_metric():
    names = names_in(promql_parser.parse("sum(rate(comfyload_prompt_total[1m])) / on() comfyload_users"))
    assert names == {"comfyload_prompt_total", "comfyload_users"} and not names <= metric_names()


@needs_promtool
def test_prometheus_own_parser_accepts_every_expression(dashboard, tmp_path):
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"comfyload:dashboard:expr{i}", "expr": e} for i, e in enumerate(expressions(dashboard))
                ],
            }
        ]
    }
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run([str(PROMTOOL), "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_the_exposition_passes_promtool_lint():
    """Prometheus' naming rules (units, `_total`, help text), on a scrape with every family filled."""
    metrics = ExporterMetrics()
    metrics.observe_record(
        {
            "kind": "prompt",
            "workflow": "w",
            "outcome": "success",
            "e2e_ms": 1200.0,
            "queue_wait_ms": 10,
            "execution_ms": 900,
        }
    )
    metrics.observe_record({"kind": "page", "outcome": "success", "retry_count": 1})
    metrics.observe_record({"kind": "book", "profile": "p", "outcome": "success"})
    metrics.observe_record({"kind": "arrival", "unit": "prompt", "outcome": "dropped"})
    metrics.observe_record({"kind": "event", "name": "outage.start", "server": "s"})
    metrics.observe_queue("s", 3)
    metrics.observe_gpu(
        {"gpu": 0, "name": "g", "source": "nvml", "util_gpu": 50, "mem_used_mb": 1, "mem_total_mb": 2, "power_w": 1}
        | {"power_limit_w": 2, "temp_c": 40, "sm_clock_mhz": 1000, "mem_clock_mhz": 2000, "throttle_reasons": []}
    )
    done = subprocess.run(
        [str(PROMTOOL), "check", "metrics"], input=generate_latest(metrics.registry), capture_output=True
    )
    assert done.returncode == 0, (done.stdout + done.stderr).decode()


def test_provisioning_points_at_the_dashboard_and_its_datasource(dashboard):
    [source] = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yaml").read_text())["datasources"]
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
    uids |= {a["datasource"]["uid"] for a in dashboard["annotations"]["list"] if "expr" in a}
    assert uids == {source["uid"]} and source["type"] == "prometheus"
    [provider] = yaml.safe_load((GRAFANA / "provisioning/dashboards/comfyload.yaml").read_text())["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    outages = [a for a in dashboard["annotations"]["list"] if a.get("name") == "Outages"]
    assert outages and "comfyload_server_down" in outages[0]["expr"], "outages are annotations"
