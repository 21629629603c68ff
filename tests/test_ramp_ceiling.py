"""A ramp that reaches its maximum without a failing step found a floor, not a knee: the console,
summary.json's observations and the report say "no knee up to N books (the ramp's maximum)"."""

from __future__ import annotations

from conftest import REPO  # noqa: F401  (the repo on sys.path, as every test)
from synthetic import meta_for, prompt_record, write_run_folder

from comfyload.analysis.ramp import knee_event, knee_text
from comfyload.analysis.sla import SlaTargets
from comfyload.analysis.summary import format_summary, summarise
from reports.build import build

SLA = {**SlaTargets(throughput_images_per_min=1, concurrency_books=1).as_dict()}


def step(users, passed=True):
    start = 1000.0 + 10 * users
    return {
        "kind": "event",
        "name": "ramp.step",
        "ts": start + 10,
        "users": users,
        "start_ts": start,
        "settled_ts": start,
        "end_ts": start + 10,
        "passed": passed,
        "images_per_min": 6.0 * users,
        "p95_s": 1.0,
        "renders": users,
        "breached": [] if passed else ["latency_p95"],
    }


def records_of(levels, passed=lambda u: True, maximum=40):
    steps = {u: step(u, passed(u)) for u in levels}
    knee = knee_event(steps, "books", maximum)
    prompts = [prompt_record(1000.0 + i, 1001.0 + i) for i in range(0, 40 * 10 + 10, 2)]
    return prompts + list(steps.values()) + [knee], knee


def test_a_ramp_that_never_breached_reports_no_knee_up_to_its_maximum(tmp_path):
    records, knee = records_of((37, 38, 39, 40))
    assert knee["first_breach"] is None
    said = "no knee up to 40 books (the ramp's maximum)"
    assert knee_text(knee).startswith(said)
    console = format_summary(summarise(records, SlaTargets(**SLA)))
    assert said in console and "knee: 40" not in console and "within SLA" not in console
    run = write_run_folder(tmp_path / "run", records, meta=meta_for(sla=SLA))
    summary = build(run)
    assert any(said in o for o in summary["observations"]), summary["observations"]
    page = (run / "report.html").read_text()
    assert said in page.replace("&#x27;", "'") and "Knee: <b>" not in page


def test_a_ramp_cut_short_of_its_maximum_says_so_and_a_real_knee_keeps_its_wording():
    _records, short = records_of((4, 6, 8), maximum=40)
    assert knee_text(short).startswith("no knee up to 8 books (the highest step measured; the ramp's maximum is 40)")
    _records, real = records_of((4, 6, 8), passed=lambda u: u < 8)
    assert knee_text(real) == "knee: 6 books within SLA; first breach at 8"
