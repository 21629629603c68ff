"""Unit: every repo path the docs, docstrings and comments cite exists. A path that a move left
behind sends the reader to nothing; this names each one with where it is cited.

A cited path is one that starts with a folder of this repo (`reports/build.py`,
`scenarios/faults/*.yaml`, `comfyload/harness/users.py:15`) or with a layer of the comfyload package,
read from comfyload/ (`harness/webui_runs.py:131`). A glob must match a file; `:line` is dropped.
A dotted module (`comfyload.orchestration.capacity.measure`) must name a module or package of its
layer. In a source file, a bare file name (`retry.py`) must be a file of this repo, or one of the
other projects' files the docstrings name (EXTERNAL_FILES: ComfyUI's `server.py`, Locust's
`event.py`). Not checked: URLs and other repos' paths (a `/` before the folder, or a folder not ours:
ComfyUI's `comfy_execution/jobs.py`), and run-folder files (`runs/<id>/...`)."""

import ast
import io
import re
import tokenize
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOP_FOLDERS = ("comfyload", "reports", "gpu_probe", "bench", "scenarios", "workflows", "tests", "scripts")
TOP_FOLDERS += ("infra", "comfy_nodes", "docs")
LAYERS = ("common", "protocol", "analysis", "workloads", "harness", "orchestration")
CITED_PATH = re.compile(
    r"(?<![\w./~$-])"  # not the tail of a URL, an absolute path or another repo's path
    rf"((?:{'|'.join(TOP_FOLDERS + LAYERS)})/[\w./*-]*[\w*])"
    r"(?![\w*]|:\d+\.\d)"  # whole, and no image tag (`comfyload/comfyui:0.3.75`)
    r"(?::\d+(?:-\d+)?)?"
    r"(?!/?<)"  # `tests/artifacts/<id>`: a placeholder, not a repo path
)
CITED_MODULE = re.compile(rf"(?<![\w.])comfyload\.(?:{'|'.join(LAYERS)})\.\w+")
BARE_FILE = re.compile(r"(?<![\w./-])\w+\.py\b")
EXTERNAL_FILES = {"server.py", "execution.py", "main.py", "cli_args.py", "jobs.py", "validation.py", "nodes.py"}
EXTERNAL_FILES |= {"model_manager.py", "event.py"}  # ComfyUI's and Locust's, named as theirs
MARKDOWN_LINK = re.compile(r"\]\((?!https?:|#)([^)#\s]+)")
DOCS = [REPO / "README.md", REPO / "DESIGN.md", *sorted((REPO / "docs").glob("*.md"))]
SOURCE_ROOTS = ("comfyload", "reports", "gpu_probe", "bench", "scenarios")
SOURCES = [p for root in SOURCE_ROOTS for p in sorted((REPO / root).rglob("*.py"))] + [REPO / "locustfile.py"]


def cited_paths(text: str) -> list[str]:
    """The repo paths a text cites, as written (without `:line`)."""
    return [match.group(1) for match in CITED_PATH.finditer(text)]


def cited_modules(text: str) -> list[str]:
    """`comfyload.<layer>.<module>` names a text cites; the part after the module may be an attribute."""
    return [match.group(0) for match in CITED_MODULE.finditer(text)]


def module_exists(dotted: str) -> bool:
    folder = REPO.joinpath(*dotted.split("."))
    return folder.with_suffix(".py").is_file() or (folder / "__init__.py").is_file()


REPO_FILE_NAMES = {p.name for p in REPO.rglob("*.py") if ".venv" not in p.parts}


def stale_bare_files(text: str) -> list[str]:
    """Bare `name.py` a source file cites that is neither this repo's nor a known other project's."""
    return [n for n in BARE_FILE.findall(text) if n not in REPO_FILE_NAMES and n not in EXTERNAL_FILES]


def exists(cited: str) -> bool:
    """A path from the repo root, else from comfyload/ for a layer; a glob must match something."""
    roots = [REPO / "comfyload"] if cited.split("/")[0] in LAYERS else [REPO]
    if "*" in cited:
        return any(any(root.glob(cited)) for root in roots)
    return any((root / cited).exists() for root in roots)


def stale_links(doc: Path, text: str) -> list[str]:
    """Markdown links to files, read from the page's own folder."""
    targets = [(doc.parent / t).resolve().relative_to(REPO).as_posix() for t in MARKDOWN_LINK.findall(text)]
    return [t for t in targets if not (REPO / t).exists()]


def prose_of_python(path: Path) -> list[tuple[int, str]]:
    """Docstrings and comments of a module, with their line: where a source file cites a path."""
    source = path.read_text()
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc is not None:
                first = node.body[0].lineno
                found.extend((first + n, line) for n, line in enumerate(doc.splitlines()))
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            found.append((token.start[0], token.string))
    return found


def prose_of_makefile(path: Path) -> list[tuple[int, str]]:
    """A Makefile's comments and echoed help: the text a reader of `make help` follows."""
    return [(n, line) for n, line in enumerate(path.read_text().splitlines(), 1) if "#" in line or "echo" in line]


def prose_of_doc(path: Path) -> list[tuple[int, str]]:
    return list(enumerate(path.read_text().splitlines(), 1))


def stale_citations() -> list[str]:
    docs = [(p, prose_of_doc(p)) for p in DOCS] + [(REPO / "Makefile", prose_of_makefile(REPO / "Makefile"))]
    sources = [(p, prose_of_python(p)) for p in SOURCES]
    stale = []
    for path, pieces in docs + sources:
        for line, text in pieces:
            missing = [c for c in cited_paths(text) if not exists(c)]
            missing += [m for m in cited_modules(text) if not module_exists(".".join(m.split(".")[:3]))]
            missing += stale_bare_files(text) if path.suffix == ".py" else []
            missing += stale_links(path, text) if path.suffix == ".md" else []
            stale += [
                f"{path.relative_to(REPO)}:{line} cites {cited}, which does not exist"
                for cited in dict.fromkeys(missing)
            ]
    return stale


def test_every_cited_repo_path_exists():
    assert stale_citations() == []


def test_the_pattern_finds_repo_paths_and_nothing_else():
    text = (
        "see `reports/build.py`, harness/webui_runs.py:131, scenarios/faults/*.yaml and "
        "comfyload/harness/gone.py:12; not http://127.0.0.1:8089/comfyload/live, "
        "Comfy-Org/ComfyUI, ComfyUI's comfy_execution/jobs.py, server.py, runs/<id>/summary.json, "
        "tests/artifacts/<id>/, the image comfyload/comfyui:0.3.75 or /opt/comfyui/models"
    )
    found = cited_paths(text)
    assert found == [
        "reports/build.py",
        "harness/webui_runs.py",
        "scenarios/faults/*.yaml",
        "comfyload/harness/gone.py",
    ]
    assert [exists(p) for p in found] == [True, True, True, False]
    modules = cited_modules("comfyload.harness.users.PromptUser and comfyload.orchestration.capacity.measure")
    assert [module_exists(".".join(m.split(".")[:3])) for m in modules] == [True, False]
    assert stale_bare_files("retry.py, ComfyUI's server.py and old_plan.py") == ["old_plan.py"]
    page = REPO / "docs" / "page.md"
    assert stale_links(page, "[a](gate.md#x), [b](../bench/RESULTS.md), [c](https://x/y.md), [d](gone.md)") == [
        "docs/gone.md"
    ]


def test_a_stale_path_in_a_docstring_is_found(tmp_path):
    module = tmp_path / "planted.py"
    module.write_text('"""Reads scenarios/gone/*.py."""\n\n# and workloads/gone.py:24\nX = "gpu_probe/x.py"\n')
    pieces = prose_of_python(module)
    cited = [(line, p) for line, text in pieces for p in cited_paths(text)]
    assert cited == [(1, "scenarios/gone/*.py"), (3, "workloads/gone.py")]  # the string literal is no prose
    assert not any(exists(p) for _, p in cited)
