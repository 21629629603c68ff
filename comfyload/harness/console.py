"""What ComfyLoad prints on a console, in at most WIDTH columns: Locust's end-of-run tables (its
own are ~160 columns wide and wrap in a terminal or a CI log) and the ramp's step lines.

Locust's main prints its tables through `locust.stats.print_*` looked up at call time, so the
narrow versions below replace them (installed from the locustfile)."""

from __future__ import annotations

WIDTH = 100
NAME_WIDTH = 30
PERCENTILES = (0.5, 0.9, 0.95, 0.99, 1.0)


def fit(name: str, width: int = NAME_WIDTH) -> str:
    """A request name cut in the middle (a fleet's names end with the server) to `width`."""
    if len(name) <= width:
        return name
    keep = width - 1
    return name[: keep - keep // 2] + "…" + name[len(name) - keep // 2 :]


def _ms(value) -> str:
    return "–" if value is None else f"{value:.0f}"


def stats_lines(stats, current: bool = True) -> list[str]:
    head = (
        f"{'Type':<6} {'Name':<{NAME_WIDTH}} {'# reqs':>7} {'# fails':>13} {'Avg ms':>7} {'Min':>6} {'Max':>7} "
        f"{'Med':>6} {'req/s':>6}"
    )
    lines = [head, "-" * len(head)]
    entries = [stats.entries[k] for k in sorted(stats.entries)] + [stats.total]
    for i, e in enumerate(entries):
        if i == len(entries) - 1:
            lines.append("-" * len(head))
        rps = e.current_rps if current else e.total_rps
        fails = f"{e.num_failures}({e.fail_ratio * 100:.1f}%)"
        lines.append(
            f"{(e.method or '')[:6]:<6} {fit(e.name):<{NAME_WIDTH}} {e.num_requests:>7} {fails:>13} "
            f"{_ms(e.avg_response_time):>7} {_ms(e.min_response_time or 0):>6} {_ms(e.max_response_time):>7} "
            f"{_ms(e.median_response_time or 0):>6} {rps or 0:>6.2f}"
        )
    return lines


def percentile_lines(stats) -> list[str]:
    labels = [f"{p * 100:g}%" for p in PERCENTILES]
    head = f"{'Type':<6} {'Name':<{NAME_WIDTH}} " + " ".join(f"{x:>8}" for x in labels) + f" {'# reqs':>7}"
    lines = [
        "Response time percentiles, ms (Locust's histogram, nearest rank; the ComfyLoad summary is exact)",
        head,
        "-" * len(head),
    ]
    entries = [stats.entries[k] for k in sorted(stats.entries)] + [stats.total]
    for i, e in enumerate(entries):
        if not e.response_times:
            continue
        if i == len(entries) - 1:
            lines.append("-" * len(head))
        values = " ".join(f"{_ms(e.get_response_time_percentile(p)):>8}" for p in PERCENTILES)
        lines.append(f"{(e.method or '')[:6]:<6} {fit(e.name):<{NAME_WIDTH}} {values} {e.num_requests:>7}")
    return lines


def error_lines(stats) -> list[str]:
    if not stats.errors:
        return []
    lines = ["Error report", f"{'# occurrences':>13}  Error", "-" * WIDTH]
    for error in stats.errors.values():
        text = " ".join(str(error.to_name()).split())
        lines.append(f"{error.occurrences:>13}  {text[: WIDTH - 15]}")
    return lines + ["-" * WIDTH, ""]


def install() -> None:
    """Locust's end-of-run (and --headless periodic) tables in WIDTH columns."""
    import locust.stats  # here: this module's formatting is tested without Locust's gevent patching

    log = locust.stats.console_logger

    def emit(lines):
        for line in lines:
            log.info(line)
        log.info("")

    locust.stats.print_stats = lambda stats, current=True: emit(stats_lines(stats, current))
    locust.stats.print_percentile_stats = lambda stats: emit(percentile_lines(stats))
    locust.stats.print_error_report = lambda stats: emit(error_lines(stats)) if stats.errors else None


SHORT_BREACH = {"latency_p95": "p95", "error_rate": "errors", "gpu_saturated": "gpu", "no_completions": "none done"}


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def ramp_step_line(step: dict, index: int, next_level, opts, now: float) -> str:
    """One line per judged ramp step: level, window, completions, p95, verdict, what comes next
    (the ETA is a bound: after a breach the ramp bisects)."""
    p95 = "–" if step.get("p95_s") is None else f"{step['p95_s']:.2f} s"
    rate = "–" if step.get("images_per_min") is None else f"{step['images_per_min']:.0f}/min"
    window = step["end_ts"] - step.get("settled_ts", step["start_ts"])
    if next_level is None:
        after = "ramp done"
    else:
        left = max(0, (opts.ramp_max - next_level) // max(opts.ramp_step, 1)) if step["passed"] else 0
        after = f"next {next_level}, ETA ≤ {_duration((left + 1) * opts.ramp_hold)}"
    verdict = (
        "PASS"
        if step["passed"]
        else "FAIL (" + ",".join(SHORT_BREACH.get(b, b) for b in step.get("breached") or []) + ")"
    )
    line = (
        f"[ramp] step {index}: {step['users']} users {verdict} | {window:.0f} s, {step.get('renders', 0)} done, "
        f"p95 {p95}, {rate} | {after}"
    )
    return line if len(line) <= WIDTH else line[: WIDTH - 1] + "…"


def end_shape_runs_on_sigterm(environment) -> None:
    """Headless with a shape, Locust waits for the shape before it installs its SIGTERM handler,
    so SIGTERM (`timeout`, a CI cancel, the wrapper passing on its own) would kill it with no
    summary and no final records. Here SIGTERM ends the shape instead: Locust then stops the
    users, writes its tables and exits as when the shape is done."""
    opts = environment.parsed_options
    if opts is None or not opts.headless or environment.shape_class is None:
        return
    import signal

    import gevent

    def end_shape():
        print("[comfyload] SIGTERM: ending the shape; summary and report follow", flush=True)
        shape_greenlet = getattr(environment.runner, "shape_greenlet", None)
        if shape_greenlet is not None:
            shape_greenlet.kill(block=False)

    gevent.signal_handler(signal.SIGTERM, end_shape)
