"""Console lines in 100 columns: Locust's tables as ComfyLoad prints them, and the ramp's step lines."""

from types import SimpleNamespace

from comfyload.harness.console import WIDTH, error_lines, fit, percentile_lines, ramp_step_line, stats_lines


def entry(name, method="COMFY", n=120):
    return SimpleNamespace(
        method=method,
        name=name,
        num_requests=n,
        num_failures=3,
        fail_ratio=3 / n,
        avg_response_time=45_123.4,
        min_response_time=210,
        max_response_time=301_000,
        median_response_time=44_000,
        current_rps=0.5,
        total_rps=0.41,
        response_times={1: 1},
        get_response_time_percentile=lambda p: 1000 * p * 300,
    )


def stats():
    long = "book_medium_controlnet_heavy_workflow @ gpu-box-number-seven.example.internal:8188"
    entries = {(long, "COMFY"): entry(long), ("PAGE", "PAGE"): entry("cpu_small", "PAGE")}
    error = SimpleNamespace(occurrences=12, to_name=lambda: "ComfyFailure('oom: OutOfMemoryError: " + "x" * 300 + "')")
    return SimpleNamespace(entries=entries, total=entry("Aggregated", None, 240), errors={1: error})


def test_locust_tables_fit_100_columns_and_keep_both_ends_of_a_long_name():
    s = stats()
    lines = stats_lines(s, current=False) + percentile_lines(s) + error_lines(s)
    assert max(len(line) for line in lines) <= WIDTH, [line for line in lines if len(line) > WIDTH]
    row = next(line for line in lines if line.startswith("COMFY"))
    assert "book_medium" in row and "internal:8188" in row and "…" in row
    assert "301000" in row and "0.41" in row, "the whole run's figures at the end"
    assert any("nearest rank" in line for line in lines), "Locust's figures say what they are"
    assert fit("short") == "short" and len(fit("x" * 80)) == 30


def test_ramp_step_lines_say_level_window_completions_p95_verdict_and_eta():
    opts = SimpleNamespace(ramp_max=50, ramp_step=1, ramp_hold=120)
    step = {
        "users": 12,
        "start_ts": 0,
        "settled_ts": 24,
        "end_ts": 120,
        "renders": 1234,
        "p95_s": 46.51,
        "images_per_min": 212.3,
        "passed": True,
        "breached": [],
    }
    line = ramp_step_line(step, 11, 13, opts, 0)
    assert line == "[ramp] step 11: 12 users PASS | 96 s, 1234 done, p95 46.51 s, 212/min | next 13, ETA ≤ 76.0 min"
    failed = ramp_step_line({**step, "passed": False, "breached": ["latency_p95"]}, 12, 12, opts, 0)
    assert (
        failed == "[ramp] step 12: 12 users FAIL (p95) | 96 s, 1234 done, p95 46.51 s, 212/min | next 12, ETA ≤ 2.0 min"
    )
    assert ramp_step_line({**step, "breached": ["latency_p95"] * 20, "passed": False}, 1, None, opts, 0).endswith("…")
    assert "ramp done" in ramp_step_line(step, 3, None, opts, 0)
