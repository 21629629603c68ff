"""`python -m gpu_probe serve|record`: the probe without Locust.

    python -m gpu_probe serve [--bind 127.0.0.1] [--port 9400] [--interval 1] [--comfy URL]
    python -m gpu_probe record out.ndjson [--interval 1] [--duration S] [--comfy URL]

`--comfy URL` is the fallback source (/system_stats) when NVML is not reachable here."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gpu_probe import DEFAULT_INTERVAL_S, ProbeError, check_interval, ticks
from gpu_probe.server import SampleServer
from gpu_probe.sources import open_source

DEFAULT_PORT = 9400


class OneLineParser(argparse.ArgumentParser):
    """argparse's own errors as one line, exit 2 (the probe's copy of the suite's: it imports
    nothing of ComfyLoad)."""

    def error(self, message: str):
        print(f"error: {self.prog.split()[-1]}: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m gpu_probe", description="GPU samples (NVML, or ComfyUI's /system_stats)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="stream samples as NDJSON over HTTP (GET /samples)")
    serve.add_argument(
        "--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 exposes it)"
    )
    serve.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = any free port)"
    )
    record = sub.add_parser("record", help="append samples to an NDJSON file until Ctrl-C or --duration")
    record.add_argument("out", type=Path, help="the file (a run folder's comfyui_metrics.ndjson works)")
    record.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    for p in (serve, record):
        p.add_argument(
            "--interval",
            type=float,
            default=DEFAULT_INTERVAL_S,
            help=f"seconds between samples (default {DEFAULT_INTERVAL_S}; at least 0.1)",
        )
        p.add_argument("--comfy", default=None, help="ComfyUI URL for the /system_stats fallback")
    return parser


def open_or_refuse(comfy: str | None):
    sampler, line = open_source(comfy)
    if sampler is None:
        hint = "" if comfy else " (pass --comfy URL for the /system_stats fallback)"
        raise ProbeError(f"nothing to sample: {line.removeprefix('GPU probe: ')}{hint}")
    print(line, file=sys.stderr, flush=True)
    return sampler


def serve(args) -> None:
    if not 0 <= args.port <= 65535:
        raise ProbeError(f"--port must be 0-65535 (0 = any free port), not {args.port}")
    sampler = open_or_refuse(args.comfy)
    try:
        server = SampleServer(sampler, args.interval, args.bind, args.port)
    except (OSError, OverflowError) as exc:
        sampler.close()
        raise ProbeError(f"cannot listen on {args.bind}:{args.port}: {getattr(exc, 'strerror', None) or exc}") from None
    print(
        f"GPU probe: serving http://{args.bind}:{server.port}/samples every {args.interval:g} s",
        file=sys.stderr,
        flush=True,
    )
    server.serve_forever()


def check_record_args(args) -> None:
    """--duration and the output file, checked before anything samples (the file is made only
    once the source is known to answer: a refused record leaves no file behind)."""
    if args.duration is not None and not args.duration > 0:
        raise ProbeError(
            f"--duration must be a number of seconds > 0, not {args.duration:g} (leave it out to record until Ctrl-C)"
        )
    if args.out.is_dir():
        raise ProbeError(f"{args.out} is a directory; record writes one NDJSON file (e.g. {args.out / 'gpu.ndjson'})")


def make_out_file(args) -> None:
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        with open(args.out, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise ProbeError(f"cannot write {args.out}: {exc.strerror or exc}") from None


def record(args) -> None:
    import time

    check_record_args(args)
    sampler = open_or_refuse(args.comfy)
    try:
        make_out_file(args)
    except ProbeError:
        sampler.close()
        raise
    end = None if args.duration is None else time.time() + args.duration
    try:
        with open(args.out, "a", encoding="utf-8") as out:
            for _ in ticks(args.interval, stopped=lambda: end is not None and time.time() >= end):
                try:
                    samples = sampler.sample()
                except Exception as exc:  # a fallback server that went away: skip the tick
                    print(f"GPU probe: sample failed ({type(exc).__name__})", file=sys.stderr, flush=True)
                    continue
                for sample in samples:
                    out.write(json.dumps(sample, separators=(",", ":")) + "\n")
                out.flush()
    finally:
        sampler.close()


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        check_interval(args.interval, "--interval")
        {"serve": serve, "record": record}[args.command](args)
        return 0
    except ProbeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
