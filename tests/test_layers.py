"""Unit: the architecture holds. Every import inside the project points down the layers that
comfyload/__init__.py draws (orchestration > harness > workloads > analysis > protocol > common;
reports beside analysis, reading run folders only; gpu_probe independent of ComfyLoad), and so does
every module a file starts by name (`python -m comfyload...`, which no import shows); no two modules
import each other, even through others or inside a function; the layers below the Locust
integration never import Locust, and nothing edits sys.path."""

import ast
import re
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


MODULE_STRING = re.compile(r"(?:^|-m\s+)(comfyload(?:\.\w+)+)$")


def modules_named_in(path: Path):
    """(line, module) for each string naming a ComfyLoad module (`"-m", "comfyload.x.y"`,
    `importlib.import_module("comfyload.x")`): a dependency no import statement shows. Docstrings
    only describe, so they are left out."""
    tree = ast.parse(path.read_text(), str(path))
    described = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in described:
            match = MODULE_STRING.search(node.value.strip())
            if match:
                yield node.lineno, match.group(1)


def offences(path: Path) -> list[str]:
    here = layer_of_path(path)
    found = []
    named = [(line, module, "imports") for line, module in imports_of(path)]
    named += [(line, module, "starts") for line, module in modules_named_in(path)]
    for line, module, verb in named:
        there = layer_of_module(module)
        where = f"{path.relative_to(REPO)}:{line} {verb} {module}"
        if here == "gpu_probe" and module.split(".")[0] in ("comfyload", "reports"):
            found.append(f"{where}: gpu_probe imports nothing of ComfyLoad")
        elif there == "gpu_probe" and here not in MAY_IMPORT_GPU_PROBE | {"gpu_probe"}:
            found.append(f"{where}: only the harness adapts the probe")
        elif here in RANK and there in RANK and there != here and RANK[there] > RANK[here]:
            found.append(f"{where}: {here} may not {verb[:-1]} {there} (upward)")
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


def test_the_check_catches_a_module_started_by_name():
    starter = REPO / "comfyload" / "harness" / "_starter_probe_for_test.py"
    starter.write_text(
        '"""Runs `python -m comfyload.orchestration.cli` (a docstring only describes)."""\n'
        'CMD = ["python", "-m", "comfyload.orchestration.ui_session", "finish"]\n'
        'LINE = "python -m comfyload.orchestration.gate"\n'
        'SAME_LAYER = ["-m", "comfyload.harness.users"]\n'
    )
    try:
        found = offences(starter)
    finally:
        starter.unlink()
    assert len(found) == 2 and all("starts comfyload.orchestration." in f and "upward" in f for f in found)


def module_name(path: Path, root: Path = REPO) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(paths: list[Path], root: Path = REPO) -> dict[str, dict[str, int]]:
    """module -> {module it imports: line}, over the project's own modules; `from a import b`
    counts as importing a.b when that is a module, and an import inside a function counts too."""
    modules = {module_name(p, root): p for p in paths}
    graph = {}
    for name, path in modules.items():
        edges = {}
        for line, imported in imports_of(path):
            target = imported if imported in modules else imported.rpartition(".")[0]
            if target in modules and target != name:
                edges.setdefault(target, line)
        graph[name] = edges
    return graph


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Each group of modules that import one another, directly or through others (Tarjan's
    strongly connected components of more than one module), its names sorted."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def closed_path(graph, group: list[str]) -> list[str]:
    """A shortest way from the group's first module back to itself, staying inside the group."""
    start = group[0]
    came_from, frontier = {start: None}, [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node]):
                if nxt == start:
                    path = [node]
                    while came_from[path[-1]] is not None:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if nxt in group and nxt not in came_from:
                    came_from[nxt] = node
                    following.append(nxt)
        frontier = following
    return group


def describe(graph, group: list[str]) -> str:
    path = closed_path(graph, group)
    steps = [f"{a} (line {graph[a][b]})" for a, b in zip(path, path[1:])]
    among = (
        f" (one of {len(group)} modules importing one another: {', '.join(group)})"
        if len(group) > len(path) - 1
        else ""
    )
    return "import circle: " + " -> ".join(steps + [path[-1]]) + among


def test_no_import_circles():
    graph = import_graph(SOURCES)
    assert not [describe(graph, group) for group in circles(graph)]


def test_the_check_catches_a_circle(tmp_path):
    package = tmp_path / "comfyload" / "workloads"
    package.mkdir(parents=True)
    (package / "_circle_a.py").write_text("from comfyload.workloads._circle_b import B\n")
    (package / "_circle_b.py").write_text("def later():\n    from comfyload.workloads import _circle_a\n")
    graph = import_graph(sorted(package.glob("*.py")), root=tmp_path)
    assert [describe(graph, group) for group in circles(graph)] == [
        "import circle: comfyload.workloads._circle_a (line 1) -> comfyload.workloads._circle_b (line 2) "
        "-> comfyload.workloads._circle_a"
    ]


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
