"""docs/options.md, written from the option table so the reference cannot drift from the code:
`python -m comfyload.workloads.option_reference > docs/options.md` (a unit test compares them)."""

from __future__ import annotations

from comfyload.workloads.options import OPTIONS, Option

INTRO = """# Options

Generated from `comfyload/workloads/options.py` by
`python -m comfyload.workloads.option_reference > docs/options.md`; do not edit by hand.

Each option is a flag of `comfyload run|ui|faults` and of `locust -f locustfile.py`, an environment
variable, a key of a scenario file and a field of the web UI's start form, unless its row says
otherwise. The command line wins over the environment variable, which wins over the scenario, which
wins over the default. The wrapper's own flags (`--scenario`, `--host`, `--port`, `--concurrency`,
`--user-class`, `--spawn-rate`, `--run-time`, `--workers`, `--outputs`, `--output` and the drills'
commands) are listed by `comfyload run --help`.

| flag | env var | scenario key | default | meaning |
|---|---|---|---|---|
"""


def cell(text: str) -> str:
    """Markdown table cell: a `|` would split it, a `<word>` would be read as HTML."""
    return str(text).replace("|", "\\|").replace("<", "\\<")


def default_text(o: Option) -> str:
    if o.flag_only:
        return "off"
    return f"`{o.default}`" if o.default != "" else "none"


def meaning(o: Option) -> str:
    parts = [o.help]
    if o.choices:
        parts.append("one of " + ", ".join(f"`{c}`" for c in o.choices))
    if o.must:
        parts.append(f"must be {o.must}")
    if o.path:
        parts.append("a file is found from where you run the command")
    if o.locust_only:
        parts.append("set by the wrapper; only a Locust flag")
    elif not o.on_form:
        parts.append("not on the web UI's form")
    return "; ".join(parts)


def row(o: Option) -> str:
    flag = " ".join([f"`{o.flag}`", *(f"(`{a}`)" for a in o.aliases)])
    key = "–" if o.locust_only else f"`{o.name}`"
    return f"| {flag} | `{o.env}` | {key} | {cell(default_text(o))} | {cell(meaning(o))} |"


def option_reference() -> str:
    return INTRO + "".join(row(o) + "\n" for o in OPTIONS)


if __name__ == "__main__":
    print(option_reference(), end="")
