"""The load shapes ticked by hand (tests/shape_ticks.py), in a process of their own: importing Locust
patches the process with gevent, which pytest's must not be."""

import subprocess
import sys

from conftest import REPO


def test_the_shapes_tick_as_their_options_say():
    done = subprocess.run(
        [sys.executable, str(REPO / "tests" / "shape_ticks.py")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("ok ") == 5, done.stdout
