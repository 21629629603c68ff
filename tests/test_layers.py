"""Unit: the architecture holds. Every import inside the project points down the layers that
comfyload/__init__.py draws (orchestration > harness > workloads > analysis > protocol > common;
reports beside analysis, reading run folders only; gpu_probe independent of ComfyLoad), the
layers below the Locust integration never import Locust, and nothing edits sys.path."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RANK = {"common": 0, "protocol": 1, "analysis": 2, "reports": 2.5, "workloads": 3, "harness": 4, "orchestration": 5}
MAY_IMPORT_GPU_PROBE = {"harness", "orchestration"}
SOURCES = sorted(p for d in ("comfyload", "reports", "gpu_probe") for p in (REPO / d).rglob("*.py"))


def layer_of_path(path: Path) -> str | None:
    parts = path.relative_to(REPO).parts
    if parts[0] == "comfyload":
        return parts[1] if len(parts) > 2 else None  # comfyload/__init__.py, __main__.py: the entry
    return parts[0]


def layer_of_module(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "comfyload":
        return parts[1] if len(parts) > 1 and parts[1] in RANK else None
    return parts[0] if parts[0] in ("reports", "gpu_probe") else None


def imports_of(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def offences(path: Path) -> list[str]:
    here = layer_of_path(path)
    found = []
    for line, module in imports_of(path):
        there = layer_of_module(module)
        where = f"{path.relative_to(REPO)}:{line} imports {module}"
        if here == "gpu_probe" and module.split(".")[0] in ("comfyload", "reports"):
            found.append(f"{where}: gpu_probe imports nothing of ComfyLoad")
        elif there == "gpu_probe" and here not in MAY_IMPORT_GPU_PROBE | {"gpu_probe"}:
            found.append(f"{where}: only the harness adapts the probe")
        elif here in RANK and there in RANK and there != here and RANK[there] > RANK[here]:
            found.append(f"{where}: {here} may not import {there} (upward)")
        elif here in ("common", "protocol", "analysis", "workloads", "reports") and module.split(".")[0] == "locust":
            found.append(f"{where}: only the harness and orchestration know Locust")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_imports_point_down(path):
    assert not offences(path)


def test_the_check_catches_an_upward_import(tmp_path, monkeypatch):
    upward = REPO / "comfyload" / "protocol" / "_upward_probe_for_test.py"
    upward.write_text("from comfyload.harness.users import ComfyHarness\nimport locust\n")
    try:
        found = offences(upward)
    finally:
        upward.unlink()
    assert len(found) == 2 and "upward" in found[0] and "Locust" in found[1]


def test_no_sys_path_edits():
    every = (
        SOURCES
        + sorted((REPO / "tests").glob("*.py"))
        + sorted((REPO / "bench").glob("*.py"))
        + [REPO / "locustfile.py"]
    )
    edits = [
        f"{p.relative_to(REPO)}:{n.lineno}"
        for p in every
        for n in ast.walk(ast.parse(p.read_text()))
        if isinstance(n, ast.Attribute)
        and n.attr in ("insert", "append")
        and isinstance(n.value, ast.Attribute)
        and n.value.attr == "path"
        and isinstance(n.value.value, ast.Name)
        and n.value.value.id == "sys"
    ]
    assert not edits


def test_the_entry_points_import():
    """The locustfile and every module load (a moved module leaves no stale import behind)."""
    import subprocess
    import sys

    modules = sorted(".".join(p.relative_to(REPO).with_suffix("").parts) for p in SOURCES if p.name != "__main__.py")
    code = "import locustfile, importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(REPO), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_failing_listener_is_logged_and_the_others_still_run(caplog):
    from comfyload.common.hooks import EventHook

    hook, heard = EventHook("prompt_done"), []

    def broken(result):
        raise RuntimeError("listener bug")

    hook.add_listener(broken)
    hook.add_listener(lambda result: heard.append(result))
    hook.fire(result="r1")
    assert heard == ["r1"] and "a listener of prompt_done failed" in caplog.text
    with pytest.raises(TypeError):
        hook.fire("positional")  # keyword-only, like Locust's
