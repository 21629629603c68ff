"""The benchmark's results table (bench/table.py) from made-up measurements: each measurement
gives its own rows in the order of the table, a measurement left out gives none, and
bench/RESULTS.md holds the machine, the table and how each figure is taken. No timing here."""

from bench.plan import Plan
from bench.table import HEADER, table_rows, text_table, write_results


def comparison(comfyload_rate: float, raw_rate: float) -> dict:
    def side(rate: float, **extra) -> dict:
        return {"rate": rate, "p50": 2.0, "p99": 9.0, "rates": [rate], **extra}

    return {
        "comfyload": side(comfyload_rate, missing_create_time=0),
        "raw": side(raw_rate, p50_none=2.5, p99_none=9.5),
        "ratio": comfyload_rate / raw_rate,
        "noise_ratio": 0.02,
        "noise_p50": 0.1,
        "noise_p99": 0.5,
    }


MACHINE = {
    "date": "today",
    "cpu": "cpu",
    "nproc": 2,
    "ram_gib": 4.0,
    "load": (1.0, 1.0, 1.0),
    "os": "os",
    "python": "3.11",
    "locust": "2",
    "comfyui": "0.3.75",
    "commit": "abc",
}


def test_rows_come_in_the_order_of_the_measurements_and_a_left_out_one_gives_none():
    res = {
        "throughput": comparison(900.0, 1000.0),
        "latency1": comparison(80.0, 80.0),
        "report": {"missing": True},
        "error": {
            key: {"n": 5, "mean": 1.0, "median": 1.0, "max": 2.0}
            for key in ("poll", "comfyload", "poll_server", "comfyload_server")
        },
    }
    rows = table_rows(res, Plan(quick=True))
    assert [r[0] for r in rows] == ["1", "2", "2", "2", "2", "4", "5", "5"]
    assert all(len(r) == len(HEADER) for r in rows)
    assert rows[0][3:] == ["1000 (raw, `executing` None)", "ratio 0.900 (noise ±0.02)", ">= 0.95", "MISS"]
    assert rows[5][2] == "NOT RUN"
    assert table_rows({}, Plan(quick=True)) == []
    assert text_table(rows).splitlines()[0].split() == [
        "#",
        "measurement",
        "ComfyLoad",
        "reference",
        "figure",
        "target",
        "verdict",
    ]


def test_results_file_holds_the_machine_the_table_and_how_each_figure_is_taken(tmp_path):
    res = {"throughput": comparison(1000.0, 1000.0), "latency1": comparison(80.0, 80.0)}
    rows = table_rows(res, Plan(quick=False))
    write_results(tmp_path / "RESULTS.md", rows, res, MACHINE, Plan(quick=False), elapsed=1.0)
    text = (tmp_path / "RESULTS.md").read_text()
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections == ["## Machine", "## Figures", "## How each figure is taken", "## Details"]
    assert "| 1 | generator throughput, 50 users, Sleep 0 (prompts/s) | 1000 |" in text
    assert all(f"- **{n}**" in text for n in ("1, 2", "3", "4", "5"))
    assert "- 1 user, prompts/s: ComfyLoad 80, raw 80" in text
