"""`comfyload plan RUN`: the capacity prediction of comfyload.analysis.capacity for a run folder,
printed, with its chart (charts/capacity.png) and capacity.json."""

from __future__ import annotations

import json
from pathlib import Path

from comfyload.analysis.capacity import (
    DEFAULT_MAX_BOOKS,
    DEFAULT_MAX_SERVERS,
    Plan,
    format_plan,
    make_plan,
    measure,
    plan_document,
)
from comfyload.common.errors import UserError
from comfyload.workloads.book import load_book_mix
from comfyload.workloads.retry import RetryPolicy, parse_backoff


def draw_chart(plan: Plan, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, thr) = plt.subplots(1, 2, figsize=(11, 4.2))
    for c in sorted(plan.knees):
        pts = sorted((p for p in plan.points if p.servers == c), key=lambda p: p.load)
        x = [p.load for p in pts]
        (line,) = lat.plot(x, [p.p95_s for p in pts], marker="o", ms=3, label=f"{c} server{'s' if c > 1 else ''}")
        thr.plot(x, [p.images_per_min for p in pts], marker="o", ms=3, color=line.get_color())
        if plan.knees[c]:
            k = next(p for p in pts if p.load == plan.knees[c])
            lat.annotate(
                f"knee {plan.knees[c]}",
                (k.load, k.p95_s),
                textcoords="offset points",
                xytext=(4, -12),
                fontsize=8,
                color=line.get_color(),
            )
    lat.axhline(plan.p95_target_s, color="red", ls="--", lw=1, label=f"SLA p95 {plan.p95_target_s:g} s")
    lat.set(xlabel="books in flight", ylabel="p95 page latency (s)", title="predicted p95")
    thr.set(xlabel="books in flight", ylabel="images / min", title="predicted throughput")
    lat.legend(fontsize=8)
    for ax in (lat, thr):
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---- the subcommand ----------------------------------------------------------------------------
def add_plan_parser(sub) -> None:
    p = sub.add_parser(
        "plan",
        help="predict the knee and the servers needed from a measured run folder",
        description="Predict capacity (books within the SLA, images/min, p95) for 1..K books on 1..C "
        "servers from a short measured run, and the servers a target needs.",
    )
    p.add_argument("run", help="a run folder (runs/<id>) whose prompt records give the service times")
    p.add_argument(
        "--sla",
        help="SLA file whose latency_p95_s and error_budget_pct are the limits "
        "(default: the targets the run was judged against)",
    )
    p.add_argument("--book-profile", help="plan for this profile or mix (default: the run's, if it ran books)")
    p.add_argument("--book-profiles", help="the profiles file (default: the run's)")
    p.add_argument("--max-books", type=int, default=DEFAULT_MAX_BOOKS, help=f"K (default {DEFAULT_MAX_BOOKS})")
    p.add_argument("--max-servers", type=int, default=DEFAULT_MAX_SERVERS, help=f"C (default {DEFAULT_MAX_SERVERS})")
    p.add_argument("--target-books", type=int, help="servers needed for this many simultaneous books")
    p.add_argument("--target-per-hour", type=float, help="servers needed for this many books arriving per hour")
    p.add_argument("--seed", type=int, default=1, help="simulation seed (same seed, same prediction)")
    p.add_argument("--pages", type=int, default=3000, help="pages simulated per point after warm-up (default 3000)")
    p.add_argument("--chart", help="PNG path (default RUN/charts/capacity.png)")
    p.add_argument("--json", help="JSON path (default RUN/capacity.json)")


def check_plan_args(args) -> None:
    for name, low in (("max_books", 1), ("max_servers", 1), ("pages", 50)):
        if getattr(args, name) < low:
            raise UserError(f"--{name.replace('_', '-')} must be >= {low}, not {getattr(args, name)}")
    if args.max_books * args.max_servers > 2000:
        raise UserError("--max-books x --max-servers must be <= 2000 points")
    if args.target_books is not None and args.target_books < 1:
        raise UserError(f"--target-books must be >= 1, not {args.target_books}")
    if args.target_per_hour is not None and args.target_per_hour <= 0:
        raise UserError(f"--target-per-hour must be > 0, not {args.target_per_hour}")
    if args.json:  # checked before the simulation, not found after it (the chart makes its folder)
        folder = Path(args.json).resolve().parent
        if not folder.is_dir():
            raise UserError(f"--json {args.json}: the folder {folder} does not exist")
        if Path(args.json).is_dir():
            raise UserError(f"--json {args.json}: is a directory, not a file path")


def run_plan(args) -> int:
    from comfyload.analysis.sla import SlaTargets, load_sla
    from comfyload.common.recorder import read_records

    check_plan_args(args)
    run = Path(args.run)
    if not (run / "comfyui_metrics.ndjson").is_file():
        raise UserError(f"{run}: not a run folder (no comfyui_metrics.ndjson)")
    try:
        meta = json.loads((run / "meta.json").read_text()) if (run / "meta.json").is_file() else {}
        records = read_records(run)
    except (ValueError, OSError) as exc:
        raise UserError(f"{run}: cannot read the run: {exc}") from None
    if args.sla:
        targets = load_sla(args.sla)
    else:
        known = {k: v for k, v in (meta.get("sla") or {}).items() if k in SlaTargets.__dataclass_fields__}
        targets = SlaTargets(**known) if known else load_sla("sla.yaml")
    measured = measure(records, book_mix_of(records, meta, args.book_profile, args.book_profiles), policy_of(meta))
    plan = make_plan(
        measured,
        targets.latency_p95_s,
        targets.error_budget_pct,
        args.max_books,
        args.max_servers,
        args.target_books,
        args.target_per_hour,
        args.seed,
        args.pages,
    )
    print(format_plan(measured, plan))
    chart = draw_chart(
        plan,
        Path(args.chart) if args.chart else run / "charts" / "capacity.png",
        f"{run.name}: {measured.profile_spec}, SLA p95 {targets.latency_p95_s:g} s",
    )
    out = Path(args.json) if args.json else run / "capacity.json"
    out.write_text(json.dumps(plan_document(measured, plan), indent=2, default=str))
    print(f"chart: {chart}\nprediction: {out}")
    return 0


def book_mix_of(records: list[dict], meta: dict, book_profile: str | None, profiles_file: str | None):
    """The books to plan: --book-profile, else the run's own when it ran books, else None (prompts)."""
    params = meta.get("parameters") if isinstance(meta.get("parameters"), dict) else {}
    had_books = any(r.get("kind") == "page" for r in records)
    spec = book_profile or (params.get("book_profile") if had_books else None)
    if not spec:
        return None
    return load_book_mix(spec, profiles_file or params.get("book_profiles") or "workflows/books.yaml")


def policy_of(meta: dict) -> RetryPolicy:
    params = meta.get("parameters") if isinstance(meta.get("parameters"), dict) else {}
    return RetryPolicy(
        max_retries=int(params.get("max_retries", 3)),
        backoff_s=parse_backoff(params.get("retry_backoff_sec", "15,45,90")),
    )
