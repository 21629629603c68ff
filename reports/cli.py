"""`python -m reports build|compare|profile`. Exit codes: 0 done (compare: no regression),
1 compare found a regression, 2 bad input (one line, no traceback)."""
from __future__ import annotations

import argparse
import os
import sys

from comfyload.errors import UserError
from comfyload.one_line_parser import OneLineParser

EXIT_OK, EXIT_REGRESSION, EXIT_USER_ERROR = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m reports", description="ComfyLoad reports from run folders.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="report.html, charts/, summary.json and README.md in a run folder")
    b.add_argument("run_dir")
    b.add_argument("--sla", default=None, help="SLA file (default: the targets recorded in meta.json)")
    c = sub.add_parser("compare", help="compare run B with baseline A; exit 1 on regression")
    c.add_argument("baseline")
    c.add_argument("candidate")
    c.add_argument("--sla", default="sla.yaml", help="SLA file with the `compare:` thresholds (default sla.yaml)")
    c.add_argument("--html", default=None, help="where to write the page (default: <candidate>/compare.html)")
    c.add_argument("--seed", type=int, default=0, help="bootstrap random seed (default 0: reproducible)")
    p = sub.add_parser("profile", help="run each workflow alone, one request at a time, N times")
    p.add_argument("workflows", nargs="+", help="workflow names (workflows/<name>.json) or paths")
    p.add_argument("--host", default=os.environ.get("COMFY_HOST") or None,
                   help="ComfyUI server URL (env COMFY_HOST); default: start the local ComfyUI, as `comfyload run` does")
    p.add_argument("--runs", "-n", type=int, default=5, help="measured runs per workflow (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="runs discarded first, per workflow (default 1)")
    p.add_argument("--timeout", type=float, default=300.0, help="per-prompt timeout in seconds (default 300)")
    p.add_argument("--seed", type=int, default=0, help="parameter seed (default 0: random)")
    p.add_argument("--out", default=None, help="folder for the records and profile.html (default runs/<id>-profile; "
                                               "point the GPU probe at it for peak VRAM)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "build":
            from reports.build import build
            build(args.run_dir, args.sla)
            print(f"report: {args.run_dir.rstrip('/')}/report.html")
            return EXIT_OK
        if args.command == "compare":
            from reports.compare import run_compare
            return EXIT_REGRESSION if run_compare(args.baseline, args.candidate, args.sla, args.html, args.seed) else EXIT_OK
        from reports.profile import run_profile
        server = None
        if args.host is None:
            from comfyload.server import LocalComfyUI
            server = LocalComfyUI(port=int(os.environ.get("COMFY_PORT", "8188"))).start()
        try:
            run_profile(args.workflows, args.host or server.url, args.runs, args.warmup, args.timeout, args.seed, args.out)
        finally:
            if server is not None:
                server.stop()
        return EXIT_OK
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130
