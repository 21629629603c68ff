"""Unit: the user classes the harness can run are the ones --user-class offers, by the same names.
In a child process: importing Locust patches the standard library, which this process has in use."""

import subprocess
import sys

CHECK = (
    "from comfyload.harness.users import USER_CLASSES_BY_NAME\n"
    "from comfyload.workloads.options import USER_CLASSES\n"
    "assert tuple(USER_CLASSES_BY_NAME) == tuple(USER_CLASSES), (tuple(USER_CLASSES_BY_NAME), USER_CLASSES)\n"
    "assert all(cls.__name__ == name for name, cls in USER_CLASSES_BY_NAME.items())\n"
)


def test_the_registry_holds_exactly_the_names_options_offer():
    proc = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
