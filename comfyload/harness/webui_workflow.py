"""The web UI's workflow field: a browser form must not make the harness read (and send to a
server) any file on this machine, so it offers, and accepts, only workflows in the suite's
workflows/ folder and in the folder of the workflow the UI was started with (the user's)."""

from __future__ import annotations

from pathlib import Path

from comfyload.protocol.workload import WORKFLOWS_DIR


def allowed_folders(startup_workflow: str | None) -> list[Path]:
    """The suite's workflows/, plus the folder of a workflow file given on the command line."""
    folders = [WORKFLOWS_DIR.resolve()]
    if startup_workflow:
        path = Path(startup_workflow)
        if path.suffix == ".json" and path.is_file():
            folder = path.resolve().parent
            if not any(folder.is_relative_to(f) for f in folders):
                folders.append(folder)
    return folders


def offered(folders: list[Path]) -> list[str]:
    """What the form lists: suite workflows by name (cpu_smoke, drills/page), the user's by path."""
    names = []
    for folder in folders:
        for path in sorted(folder.rglob("*.json")):
            if folder == WORKFLOWS_DIR.resolve():
                names.append(str(path.relative_to(folder).with_suffix("")))
            else:
                names.append(str(path))
    return names


def refusal(value, folders: list[Path]) -> str | None:
    """Why the form's workflow value is refused, or None when it names a workflow in `folders`."""
    if not isinstance(value, str) or not value.strip():
        return "workflow: give a workflow name from the list"
    candidates = (
        [Path(value)]
        if Path(value).is_absolute()
        else [Path(value), WORKFLOWS_DIR / value, WORKFLOWS_DIR / f"{value}.json", *(f / value for f in folders)]
    )
    for candidate in candidates:
        try:
            resolved = candidate.resolve()
        except (OSError, RuntimeError, ValueError):
            continue
        if resolved.is_file():
            if not any(resolved.is_relative_to(f) for f in folders):
                return (
                    f"workflow {value!r} is outside the workflow folders the web UI may read "
                    f"({', '.join(str(f) for f in folders)})"
                )
            if resolved.suffix != ".json":
                return f"workflow {value!r} is not a .json workflow"
            return None
    return f"workflow {value!r} not found in {', '.join(str(f) for f in folders)}"
