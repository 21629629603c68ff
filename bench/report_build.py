"""Benchmark (not a test): `python -m reports build` on a synthetic 24-hour soak — 86,400
stats-history rows and 1,000,000 prompt records — must finish in under 60 s on the dev machine.

    .venv/bin/python -m bench.report_build [--prompts N] [--seconds S] [--keep DIR]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from reports.build import build
from tests.synthetic import write_soak

TARGET_S = 60.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=86_400)
    parser.add_argument("--keep", default=None, help="write the soak here and keep it (default: a tmp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="comfyload-bench-") as tmp:
        folder = Path(args.keep or tmp) / "soak"
        started = time.perf_counter()
        write_soak(folder, args.prompts, args.seconds)
        size_mb = sum(p.stat().st_size for p in folder.iterdir()) / 2**20
        print(f"generated {args.prompts:,} prompt records, {args.seconds:,} history rows ({size_mb:.0f} MB) "
              f"in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        summary = build(folder)
        elapsed = time.perf_counter() - started
    print(f"report build: {elapsed:.1f} s for {summary['prompts_submitted']:,} prompts "
          f"(target < {TARGET_S:.0f} s: {elapsed / TARGET_S:.2f} of the budget) -> {'OK' if elapsed < TARGET_S else 'TOO SLOW'}")
    return 0 if elapsed < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
