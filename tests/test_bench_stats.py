"""The benchmark's arithmetic (bench/stats.py), hand-computed. No timing here, no Locust."""

from bench import stats


def test_percentile_interpolates_linearly():
    assert stats.percentile([4, 1, 3, 2], 50) == 2.5
    assert stats.percentile([1, 2, 3, 4, 5], 99) == 4.96
    assert stats.percentile([7], 99) == 7
    assert stats.percentile([], 50) is None


def test_throughput_is_count_over_first_send_to_last_done():
    assert stats.throughput([10.0, 10.5], [11.0, 12.0]) == 1.0
    assert stats.throughput([10.0], [None]) is None
    assert stats.pooled_throughput([(100, 2.0), (50, 3.0)]) == 30.0


def test_client_added_is_e2e_minus_server_span():
    # sent at 100.000 s, done at 100.250 s; server span 1000 -> 1240 ms: 10 ms added by the client
    assert abs(stats.client_added_ms(100.0, 100.25, 1000, 1240) - 10.0) < 1e-9


def test_errors_against_a_known_duration():
    assert stats.abs_errors_ms([1310, 1290, 3300], 1300) == {
        "n": 3,
        "mean": (10 + 10 + 2000) / 3,
        "median": 10,
        "max": 2000,
    }
    assert stats.abs_errors_ms([], 1300)["mean"] is None


def test_slowdown_in_percent():
    assert abs(stats.slowdown_pct(200.0, 190.0) - 5.0) < 1e-9
    assert abs(stats.slowdown_pct(200.0, 210.0) + 5.0) < 1e-9


def test_warmup_drops_the_first_prompts_by_send_time():
    items = [{"t": t} for t in (5, 1, 4, 2, 3, 6, 7, 8, 9, 10)]
    assert [i["t"] for i in stats.after_warmup(items, key=lambda i: i["t"], fraction=0.2)] == [3, 4, 5, 6, 7, 8, 9, 10]


def test_noise_floor_and_verdicts():
    assert stats.spread([3.0, 1.0, 2.0]) == 2.0
    assert stats.relative_spread([90.0, 100.0, 110.0]) == 0.2
    assert stats.judge(True, 0.0, 0.0) == "PASS"
    assert stats.judge(False, 0.5, 2.0) == "NOISY"
    assert stats.judge(False, 3.0, 2.0) == "MISS"
