"""The capacity models against cases computed by hand (deterministic service) and against
queueing theory where it is exact (MVA for exponential service, Pollaczek-Khinchine for M/D/1)."""

import math
import random

import pytest

from comfyload.analysis.queueing import (
    Profile,
    Workload,
    knee,
    mva_single_server,
    predict_closed,
    servers_for_books,
    servers_for_rate,
    simulate_closed,
    simulate_open,
)


def sleep_books(seconds=1.0, pages=4, **kw):
    return Workload((Profile("sleep", tuple((seconds,) for _ in range(pages))),), **kw)


@pytest.mark.parametrize("books", [1, 2, 4, 7])
def test_one_server_deterministic_closed_loop_is_n_times_s(books):
    # one server, service s, N books each with one page in flight: FIFO round robin, so every
    # page waits for the other N-1 pages: latency N*s, throughput 1/s (saturated from N = 1)
    p = simulate_closed(sleep_books(1.0), books, servers=1, pages=500)
    assert p.p95_s == pytest.approx(books * 1.0)
    assert p.p50_s == pytest.approx(books * 1.0)
    assert p.images_per_min == pytest.approx(60.0, rel=1e-3)


@pytest.mark.parametrize("books,servers", [(1, 2), (2, 2), (4, 2), (6, 3), (9, 3)])
def test_c_servers_deterministic(books, servers):
    # N <= c: no wait, throughput N/s; N > c (multiple of c): latency N*s/c, throughput c/s
    p = simulate_closed(sleep_books(2.0), books, servers, pages=600)
    assert p.images_per_min == pytest.approx(60.0 * min(books, servers) / 2.0, rel=1e-3)
    assert p.p95_s == pytest.approx(2.0 * max(1.0, books / servers))


def test_client_overhead_is_a_delay_outside_the_server():
    # overhead d per page outside the server: one book alone cycles in s + d; with many books the
    # server stays the bottleneck: throughput 1/s, latency N*s (the d of each book overlaps others' service)
    w = sleep_books(1.0, client_s=0.25)
    alone = simulate_closed(w, 1, 1, pages=300)
    assert alone.p95_s == pytest.approx(1.25)
    assert alone.images_per_min == pytest.approx(60 / 1.25, rel=1e-3)
    busy = simulate_closed(w, 5, 1, pages=500)
    assert busy.images_per_min == pytest.approx(60.0, rel=1e-3)
    assert busy.p95_s == pytest.approx(5.0)


def test_knee_of_the_sleep_scenario_is_four_books():
    # Sleep 1 s pages on one ComfyUI, p95 target 4.5 s: 4 books -> 4 s, 5 books -> 5 s
    points = predict_closed(sleep_books(1.0), max_books=8, max_servers=2, pages=400)
    assert knee(points, 1, 4.5) == 4
    assert knee(points, 2, 4.5) == 9 - 1  # two servers: latency N/2 s -> up to 9 books, grid ends at 8
    assert servers_for_books(points, 6, 4.5) == 2
    assert servers_for_books(points, 3, 4.5) == 1
    assert servers_for_books(points, 20, 4.5) is None


def test_simulation_matches_mva_for_exponential_service():
    rng = random.Random(7)
    samples = tuple(rng.expovariate(1.0) for _ in range(20000))  # mean ~1 s
    mean = sum(samples) / len(samples)
    w = Workload((Profile("exp", (samples,)),), client_s=0.5)
    for n in (1, 3, 6):
        x, r = mva_single_server(mean, 0.5, n)
        p = simulate_closed(w, n, 1, seed=3, pages=20000)
        assert p.images_per_min / 60.0 == pytest.approx(x, rel=0.05)
        assert p.p50_s < r + 0.5 < p.p95_s  # mean latency = MVA's response time + the client's delay


def test_mva_hand_case():
    # N=1: R = s, X = 1/(Z+s); N=2, s=1, Z=0: R = s(1 + X1*R1) = 2, X = 1
    assert mva_single_server(1.0, 1.0, 1) == pytest.approx((0.5, 1.0))
    assert mva_single_server(1.0, 0.0, 2) == pytest.approx((1.0, 2.0))


def test_open_md1_mean_wait_matches_pollaczek_khinchine():
    # M/D/1, one-page books, s = 1 s, rho = 0.5: mean wait = rho*s / (2(1-rho)) = 0.5 s, mean sojourn 1.5 s.
    w = sleep_books(1.0, pages=1)
    p = simulate_open(w, books_per_hour=0.5 * 3600, servers=1, seed=1, pages=40000)
    assert p.stable
    assert p.images_per_min == pytest.approx(30.0, rel=0.03)
    # the median sojourn of M/D/1 at rho 0.5 is below the mean; check the mean through p50 < 1.5 < p95
    assert 1.0 <= p.p50_s < 1.5 < p.p95_s


def test_open_overload_is_unstable_and_more_servers_fix_it():
    w = sleep_books(1.0, pages=4)  # a book needs 4 s of server time
    over = simulate_open(w, books_per_hour=1800, servers=1, pages=500)  # 0.5 books/s * 4 s = 2 servers' worth
    assert not over.stable
    c, point = servers_for_rate(w, 1800, p95_target_s=10.0, max_servers=6, pages=2000)
    assert c is not None and c >= 3 and point.stable and point.p95_s <= 10.0


def test_retries_cost_server_time_and_latency():
    w = sleep_books(1.0, pages=1, fail_p=0.5, max_retries=1, backoff_s=(2.0,))
    p = simulate_closed(w, 1, 1, seed=2, pages=4000)
    # one book alone: half the pages take 1 s, half 1 + 2 + 1 = 4 s; a quarter of pages fail twice -> error 25 %
    assert p.error_pct == pytest.approx(25.0, abs=2.5)
    assert p.p95_s == pytest.approx(4.0)
    assert w.mean_book_service_s == pytest.approx(1.5)


def test_same_seed_same_prediction():
    rng = random.Random(1)
    samples = tuple(rng.uniform(0.5, 1.5) for _ in range(100))
    w = Workload((Profile("u", (samples,) * 3),), client_s=0.1)
    assert simulate_closed(w, 4, 1, seed=9) == simulate_closed(w, 4, 1, seed=9)
    assert simulate_open(w, 900, 1, seed=9) == simulate_open(w, 900, 1, seed=9)
    assert not math.isnan(simulate_closed(w, 4, 1, seed=9).p95_s)


def test_periodic_server_pause_delays_each_window_once():
    # ComfyUI pauses ~0.3 s for gc.collect() at most every 10 s: with 4 books of 1 s pages a page
    # waits behind 4 services, at most one of them paused -> p95 4.3 s; i.i.d. draws of the same
    # gaps would sometimes stack two pauses. Throughput: 10 pages per 10 + 0.3 s.
    w = sleep_books(1.0, pause_every_s=10.0, pause_s=0.3)
    p = simulate_closed(w, 4, 1, pages=2000)
    assert p.p95_s == pytest.approx(4.3)
    assert p.images_per_min == pytest.approx(60 * 11 / 11.3, rel=0.01)  # 11 starts span 10 s: a pause per 11 pages
