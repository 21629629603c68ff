"""`python -m reports build|compare` (also `comfyload report|compare`). Exit codes: 0 done (compare: no regression),
1 compare found a regression, 2 bad input (one line, no traceback)."""

from __future__ import annotations

import argparse

from comfyload.common.cli_exit import run_cli
from comfyload.common.one_line_parser import OneLineParser

EXIT_OK, EXIT_REGRESSION = 0, 1


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m reports", description="ComfyLoad reports from run folders.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser(
        "build", prog="comfyload report", help="report.html, charts/, summary.json and README.md in a run folder"
    )
    b.add_argument("run_dir")
    b.add_argument("--sla", default=None, help="SLA file (default: the targets recorded in meta.json)")
    c = sub.add_parser("compare", prog="comfyload compare", help="compare run B with baseline A; exit 1 on regression")
    c.add_argument("baseline")
    c.add_argument("candidate")
    c.add_argument("--sla", default="sla.yaml", help="SLA file with the `compare:` thresholds (default sla.yaml)")
    c.add_argument("--html", default=None, help="where to write the page (default: <candidate>/compare.html)")
    c.add_argument("--seed", type=int, default=0, help="bootstrap random seed (default 0: reproducible)")
    c.add_argument(
        "--force",
        action="store_true",
        help="compare runs of different workloads (workflow, user class, book profile) anyway",
    )
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: run_command(args))


def run_command(args) -> int:
    if args.command == "build":
        from reports.build import build  # each command loads only its own (matplotlib, numpy)

        build(args.run_dir, args.sla)
        print(f"report: {args.run_dir.rstrip('/')}/report.html")
        return EXIT_OK
    from reports.compare import run_compare

    regressed = run_compare(args.baseline, args.candidate, args.sla, args.html, args.seed, args.force)
    return EXIT_REGRESSION if regressed else EXIT_OK
