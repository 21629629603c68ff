"""API-format workflows: loading, per-request parameters that defeat ComfyUI's cache, and
validation against a server's /object_info before any load starts."""

from __future__ import annotations

import copy
import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from comfyload.common.errors import UserError
from comfyload.common.paths import REPO
from comfyload.common.yamlfile import read_mapping, refuse_unknown_keys
from comfyload.protocol.graph_check import graph_problems
from comfyload.protocol.input_files import contained_input

WORKFLOWS_DIR = REPO / "workflows"
# Inputs that are seeds on every sampler-like node (KSampler, KSamplerAdvanced, RandomNoise, ...).
SEED_INPUTS = ("seed", "noise_seed")
SEED_MAX = 2**63 - 1
SPEC_KEYS = ("description", "varying", "models", "inputs", "expect_invalid")
VARYING_KEYS = ("node", "input", "kind", "min", "max", "values")
INPUT_KEYS = ("node", "input", "file", "per_request")


@dataclass
class VaryingInput:
    """An input the spec marks as changing per request: `nonce` (random int in [min, max]),
    `pool` (random choice from `values`), `suffix` (the text plus a unique token), or
    `page_key` (a key that stays the same across the retries of one book page)."""

    node: str
    input: str
    kind: str = "nonce"
    min: int = 0
    max: int = 2**31 - 1
    values: list = field(default_factory=list)


@dataclass
class InputFile:
    """A local file the workflow loads (LoadImage): uploaded with POST /upload/image once before
    load starts, or under a unique name per request when `per_request` (so upload cost and
    disk growth are part of the test)."""

    node: str
    input: str
    file: Path
    per_request: bool = False

    @property
    def key(self) -> str:
        return f"{self.node}.{self.input}"


@dataclass
class Workflow:
    name: str
    path: Path
    graph: dict
    sha256: str
    varying: list[VaryingInput]
    models: list[dict]
    description: str = ""
    inputs: list[InputFile] = field(default_factory=list)
    expect_invalid: bool = False  # a drill's page the server must refuse: preflight lets it through

    def parameterise(self, rng: random.Random, context: dict | None = None) -> dict:
        """A fresh copy of the graph with new seeds and varied inputs, so the server's cache
        cannot answer it. `context` carries `page_key` and uploaded input names."""
        context = context or {}
        graph = copy.deepcopy(self.graph)
        for node in graph.values():
            inputs = node.get("inputs", {})
            for name in SEED_INPUTS:
                if name in inputs and not isinstance(inputs[name], list):
                    inputs[name] = rng.randint(0, SEED_MAX)
        for v in self.varying:
            inputs = graph[v.node]["inputs"]
            if v.kind == "nonce":
                inputs[v.input] = rng.randint(v.min, v.max)
            elif v.kind == "pool":
                inputs[v.input] = rng.choice(v.values)
            elif v.kind == "page_key":
                inputs[v.input] = context.get("page_key") or f"{rng.getrandbits(48):012x}"
            else:  # suffix
                inputs[v.input] = f"{inputs[v.input]} {rng.getrandbits(48):012x}"
        for upload in self.inputs:
            name = context.get("uploaded", {}).get(upload.key)
            if name is not None:
                graph[upload.node]["inputs"][upload.input] = name
        return graph


def resolve_workflow_path(name_or_path: str) -> Path:
    """`cpu_smoke` means workflows/cpu_smoke.json; a path is tried as given, then inside
    workflows/ (so scenarios can say `drills/page.json` from any working directory)."""
    for path in (Path(name_or_path), WORKFLOWS_DIR / name_or_path, WORKFLOWS_DIR / f"{name_or_path}.json"):
        if path.is_file():
            return path
    raise UserError(f"workflow file not found: {name_or_path}")


def load_workflow(name_or_path: str) -> Workflow:
    path = resolve_workflow_path(name_or_path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"workflow {path}: cannot be read ({exc.strerror or exc})") from None
    try:
        graph = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not a UTF-8 JSON file (byte {exc.start})") from None
    except RecursionError:
        raise UserError(f"{path}: invalid JSON: nested too deeply") from None
    check_api_format(graph, path)
    spec = load_spec(path)
    varying = [parse_varying(entry, path) for entry in spec.get("varying") or []]
    for v in varying:
        if v.node not in graph or v.input not in graph[v.node].get("inputs", {}):
            raise UserError(f"{spec_path(path)}: varying input {v.node}.{v.input} is not in the workflow")
    inputs = [parse_input(entry, path, graph) for entry in spec.get("inputs") or []]
    return Workflow(
        name=path.stem,
        path=path,
        graph=graph,
        sha256=hashlib.sha256(raw).hexdigest(),
        varying=varying,
        models=list(spec.get("models") or []),
        description=str(spec.get("description", "")),
        inputs=inputs,
        expect_invalid=spec.get("expect_invalid") is True,
    )


def parse_input(entry, path: Path, graph: dict) -> InputFile:
    """An `inputs:` entry of the spec; the file must be an image inside the spec's folder."""
    if not isinstance(entry, dict) or not all(k in entry for k in ("node", "input", "file")):
        raise UserError(f"{spec_path(path)}: bad inputs entry {entry!r}: needs node, input and file")
    refuse_unknown_keys(entry, INPUT_KEYS, spec_path(path), "inputs key")
    item = InputFile(
        node=str(entry["node"]),
        input=str(entry["input"]),
        file=Path(),
        per_request=bool(entry.get("per_request", False)),
    )
    if item.node not in graph or item.input not in graph[item.node].get("inputs", {}):
        raise UserError(f"{spec_path(path)}: input {item.key} is not in the workflow")
    item.file = contained_input(spec_path(path), entry["file"])
    return item


def check_api_format(graph, path: Path) -> None:
    """ComfyUI's API format is {node_id: {class_type, inputs}}; the UI's save format (with
    `nodes` and `links`) is the common mistake, so name it."""
    if isinstance(graph, dict) and "nodes" in graph and "links" in graph:
        raise UserError(
            f"{path}: this is ComfyUI's UI format (nodes/links lists), not the API format; in ComfyUI use "
            "Workflow > Export (API) (older menus: Save (API Format)) and pass that file"
        )
    if not isinstance(graph, dict) or not graph:
        raise UserError(f"{path}: expected a JSON object of nodes (API format)")
    for node_id, node in graph.items():
        if not isinstance(node, dict) or "class_type" not in node or not isinstance(node.get("inputs", {}), dict):
            raise UserError(f"{path}: node {node_id} has no class_type/inputs (not API format)")


def spec_path(workflow_path: Path) -> Path:
    return workflow_path.with_suffix(".spec.yaml")


def load_spec(workflow_path: Path) -> dict:
    """The spec, its keys checked: a misspelt `varyings:` would otherwise vary nothing, and the
    server's cache would answer every request."""
    spec = read_mapping(spec_path(workflow_path), "workflow spec", missing_ok=True)
    refuse_unknown_keys(spec, SPEC_KEYS, spec_path(workflow_path), "spec key")
    return spec


def parse_varying(entry, path: Path) -> VaryingInput:
    if isinstance(entry, dict):
        refuse_unknown_keys(entry, VARYING_KEYS, spec_path(path), "varying key")
    try:
        v = VaryingInput(**{**entry, "node": str(entry["node"])})
    except (TypeError, KeyError) as exc:
        raise UserError(f"{spec_path(path)}: bad varying entry {entry!r}: {exc}") from None
    if v.kind not in ("nonce", "pool", "suffix", "page_key") or (v.kind == "pool" and not v.values):
        raise UserError(
            f"{spec_path(path)}: varying {v.node}.{v.input}: kind must be nonce, pool (with values), suffix or page_key"
        )
    return v


def validate_against_server(graph: dict, object_info: dict, workflow_name: str, uploaded=()) -> None:
    """Every problem ComfyUI would refuse the graph for (graph_check), named in one error, so a
    run never starts against a server that cannot execute the workflow. `uploaded`: "node.input"
    keys the spec uploads before load, so they need not be among the server's files yet."""
    problems = graph_problems(graph, object_info, uploaded)
    if problems:
        count = f"{len(problems)} problems" if len(problems) > 1 else "1 problem"
        raise UserError(f"workflow {workflow_name}: {count}: " + "; ".join(problems))


def upload_inputs(workflow: Workflow, upload, per_request: bool, rng: random.Random) -> dict:
    """Uploads the spec's input files through `upload(path, name) -> server name`: the shared
    ones once before load (per_request=False), or the per-request ones under unique names.
    Returns {"node.input": server name}."""
    names = {}
    for item in workflow.inputs:
        if item.per_request != per_request:
            continue
        name = item.file.name if not per_request else f"{item.file.stem}-{rng.getrandbits(48):012x}{item.file.suffix}"
        names[item.key] = upload(item.file, name)
    return names


INJECTED_SLEEP_NODE = "comfyload_injected_sleep"


def parse_inject_sleep(text: str):
    """ "20-40:3" -> (20.0, 40.0, 3.0); "" -> None."""
    if not text:
        return None
    try:
        window, seconds = text.split(":")
        start, end = (float(x) for x in window.split("-"))
        seconds = float(seconds)
    except ValueError:
        raise UserError(f"--inject-sleep must be START-END:SECONDS like 20-40:3, not {text!r}") from None
    if not 0 <= start < end or seconds <= 0:
        raise UserError(f"--inject-sleep needs 0 <= START < END and SECONDS > 0, not {text!r}")
    return start, end, seconds


def with_injected_sleep(graph: dict, seconds: float) -> dict:
    """The graph plus a standalone Sleep output node (drill pack): ComfyUI runs it with the
    prompt, so the prompt takes `seconds` longer — artificial latency without touching the
    workflow file."""
    return {**graph, INJECTED_SLEEP_NODE: {"class_type": "Sleep", "inputs": {"seconds": seconds}}}
