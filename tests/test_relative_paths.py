"""A file the user names relative to their own directory reaches Locust absolute: Locust runs in the
checkout (comfyload/orchestration/run.py: locust_command), where the relative name means another
file or none. Each option that names a file is given one in a folder that is not the checkout."""

from pathlib import Path

import pytest

from comfyload.orchestration.cli import build_parser
from comfyload.orchestration.run import locust_command
from comfyload.orchestration.scenario import load_scenario, resolve_settings
from comfyload.workloads import options

FILES = {
    "workflow": "mine.json",
    "sla": "mine-sla.yaml",
    "book_profiles": "mine-books.yaml",
    "arrivals_trace": "mine-trace.ndjson",
    "comfy_hosts": "mine-hosts.txt",
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_a_relative_file_reaches_locust_absolute(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path(FILES[name]).write_text("{}\n")
    option = next(o for o in options.OPTIONS if o.name == name)
    args = build_parser().parse_args(["run", option.flag, FILES[name], "--user-class", "OpenLoopUser"])
    settings = resolve_settings(args, load_scenario(args.scenario))
    cmd = locust_command("http://127.0.0.1:9", settings, tmp_path / "run", "test", args, headless=True)
    assert cmd[cmd.index(option.flag) + 1] == str(tmp_path / FILES[name])
