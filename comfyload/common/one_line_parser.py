"""argparse's own errors (an unknown flag, `--jobs x`, a choice not offered) as the suite's one
line: `error: ...`, exit 2, without the usage block argparse prints above it (`--help` shows that)."""

from __future__ import annotations

import argparse
import sys


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str):
        print(f"error: {self.prog.split()[-1]}: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)
