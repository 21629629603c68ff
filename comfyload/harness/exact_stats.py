"""Locust rounds response times >= 10 s to whole seconds (and >= 100 ms to tens) before they
enter its percentile buckets; for 45-s SLA latencies that is a 1-s error. Replacing the bucket
function keeps every response time to the millisecond, so the live UI shows exact figures."""

import locust.stats


def exact_bucket(response_time) -> int:
    return int(round(response_time))


def install() -> None:
    locust.stats.bucket_response_time = exact_bucket
