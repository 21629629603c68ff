"""An API-format graph checked the way ComfyUI checks a prompt, from nothing but the server's
/object_info, so a graph the server would refuse is named before any load starts (ComfyUI has no
validate-only endpoint: every prompt of the run would fail instead).

The rules follow ComfyUI's `execution.validate_prompt` / `validate_inputs` and
`comfy_execution/validation.py:validate_node_input` (Comfy-Org/ComfyUI at commit
a125cd84b054a57729b5eecab930ca9408719832, and the pinned 0.3.75 release, which match; the `*`
(Any) rule is explicit from commit 503745c94c75896cfac4419f651a6993098fecc5, while 0.3.75 gets it
from `__ne__` overrides on the node's type objects, which /object_info's JSON cannot show):
unknown class (`invalid_prompt`), no output node (`prompt_no_outputs`), a link that is not
[node_id, slot] (`bad_linked_input`), a link to a node or output slot that does not exist (an
exception in ComfyUI), a type mismatch across a link (`return_type_mismatch`), a required input
missing (`required_input_missing`), a value that does not convert or lies outside min/max
(`invalid_input_type`, `value_smaller_than_min`, `value_bigger_than_max`), a COMBO value not
offered (`value_not_in_list`: a missing model or input file), and a cycle (ComfyUI's
`dependency_cycle`). One difference on purpose: every node is checked, also one that no output
needs (ComfyUI skips it), because a broken stray node in a load-test workflow is a mistake too.
"""

from __future__ import annotations

from comfyload.protocol.input_types import type_problem

# COMBO inputs whose value names a file in a model folder: a bad value there is a missing model.
MODEL_INPUT_SUFFIXES = (
    "ckpt_name",
    "lora_name",
    "vae_name",
    "control_net_name",
    "unet_name",
    "clip_name",
    "clip_name1",
    "clip_name2",
    "model_name",
    "upscale_model",
    "style_model_name",
    "clip_vision_name",
    "gligen_name",
    "hypernetwork_name",
)
ANY_TYPE = "*"  # comfy_api IO.AnyType.io_type
MATCH_TYPE = "COMFY_MATCHTYPE_V3"  # comfy_api IO.MatchType.io_type: checked by the frontend only
UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload", "upload")


def types_match(received, expected) -> bool:
    """ComfyUI's `validate_node_input(received_type, input_type)` (non-strict): equal, either is
    `*` or a MatchType, a COMBO list into a COMBO input, or the comma-separated unions overlap."""
    if received == expected:
        return True
    if ANY_TYPE in (received, expected) or MATCH_TYPE in (received, expected):
        return True
    if isinstance(received, list) and expected == "COMBO":
        return True
    if not isinstance(received, str) or not isinstance(expected, str):
        return False
    got = {t.strip() for t in received.split(",")}
    wanted = {t.strip() for t in expected.split(",")}
    return ANY_TYPE in got or ANY_TYPE in wanted or bool(got & wanted)


def declared_type(declaration):
    """The input's type as `validate_inputs` sees it: a list of choices is a COMBO."""
    if not isinstance(declaration, (list, tuple)) or not declaration:
        return None
    kind = declaration[0]
    return "COMBO" if isinstance(kind, list) else kind


def combo_choices(declaration):
    """The allowed values of a COMBO input in /object_info (old and new list formats), else None."""
    if not isinstance(declaration, (list, tuple)) or not declaration:
        return None
    kind = declaration[0]
    if isinstance(kind, list):
        return kind
    if kind == "COMBO" and len(declaration) > 1 and isinstance(declaration[1], dict):
        return declaration[1].get("options")
    return None


def _show(type_name) -> str:
    return "COMBO" if isinstance(type_name, list) else str(type_name)


def graph_problems(graph: dict, object_info: dict, uploaded=()) -> list[str]:
    """Every problem ComfyUI would refuse the graph for, each naming node id, class and input.
    `uploaded`: "node.input" keys the spec uploads before load (not among the server's files yet)."""
    problems = []
    known = {nid: object_info.get(node.get("class_type")) for nid, node in graph.items()}
    for node_id in sorted(graph, key=_order):
        class_type = graph[node_id].get("class_type")
        info = known[node_id]
        if info is None:
            problems.append(f"node {node_id}: unknown node class {class_type!r} (not installed on the server)")
            continue
        problems += _node_problems(node_id, graph, info, known, uploaded)
    if not any(info and info.get("output_node") for info in known.values()):
        problems.append(
            "no output node (such as SaveImage or PreviewImage): the server refuses it as prompt_no_outputs"
        )
    problems += [f"nodes {' -> '.join(cycle)} form a cycle (a node waits on itself)" for cycle in _cycles(graph)]
    return problems


def _node_problems(node_id: str, graph: dict, info: dict, known: dict, uploaded) -> list[str]:
    class_type = graph[node_id]["class_type"]
    where = f"node {node_id} ({class_type})"
    inputs = graph[node_id].get("inputs", {})
    required = info.get("input", {}).get("required", {}) or {}
    declared = {**required, **(info.get("input", {}).get("optional", {}) or {})}
    problems = [f"{where} input {name}: required input missing" for name in required if name not in inputs]
    for name, value in inputs.items():
        declaration = declared.get(name)
        if declaration is None:
            continue  # ComfyUI ignores inputs the class does not declare
        if isinstance(value, list):
            link = _link_problem(value, name, graph, known, declared_type(declaration))
            if link:
                problems.append(f"{where} input {link}")
            continue
        key = f"{node_id}.{name}"
        wrong = type_problem(name, value, declaration)
        if wrong and key not in uploaded:
            problems.append(f"{where}: {wrong}")
            continue
        choices = combo_choices(declaration)
        if choices is None or value in choices or key in uploaded:
            continue
        options = declaration[1] if len(declaration) > 1 and isinstance(declaration[1], dict) else {}
        if name.endswith(MODEL_INPUT_SUFFIXES):
            problems.append(f"{where}: missing model {name}={value!r} on the server")
        elif any(options.get(flag) for flag in UPLOAD_FLAGS):
            problems.append(
                f"{where}: input file {name}={value!r} is not on the server (or list it under inputs: in the spec)"
            )
        else:
            problems.append(f"{where}: {name}={value!r} is not one of the server's choices")
    return problems


def _link_problem(value: list, name: str, graph: dict, known: dict, expected) -> str | None:
    if len(value) != 2 or not isinstance(value[1], int) or isinstance(value[1], bool):
        return f"{name}: a link must be [node_id, output_slot], not {value!r}"
    source, slot = str(value[0]), value[1]
    if source not in graph:
        return f"{name}: links to node {source}, which is not in the workflow"
    info = known[source]
    if info is None:
        return None  # the unknown class is named on its own
    outputs = info.get("output") or []
    source_class = graph[source]["class_type"]
    if not 0 <= slot < len(outputs):
        has = f"outputs 0-{len(outputs) - 1}" if outputs else "no outputs"
        return f"{name}: links to output slot {slot} of node {source} ({source_class}), which has {has}"
    received = outputs[slot]
    if expected is not None and not types_match(received, expected):
        gives = f"node {source} ({source_class}) slot {slot} gives {_show(received)}"
        return f"{name}: expects {_show(expected)} but {gives}"
    return None


def _cycles(graph: dict) -> list[list[str]]:
    """Each cycle of links once, as the node ids along it (first id repeated at the end)."""
    edges = {
        nid: sorted({str(v[0]) for v in node.get("inputs", {}).values() if _is_link(v) and str(v[0]) in graph})
        for nid, node in graph.items()
    }
    state, found, seen_sets = {}, [], set()

    def visit(start):
        stack = [(start, iter(edges[start]))]
        path = [start]
        state[start] = "open"
        while stack:
            nid, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[nid] = "done"
                stack.pop()
                path.pop()
            elif state.get(child) == "open":
                cycle = path[path.index(child) :]
                if frozenset(cycle) not in seen_sets:
                    seen_sets.add(frozenset(cycle))
                    found.append([*cycle, child])
            elif child not in state:
                state[child] = "open"
                path.append(child)
                stack.append((child, iter(edges[child])))

    for nid in sorted(graph, key=_order):
        if nid not in state:
            visit(nid)
    return found


def _is_link(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)


def _order(node_id: str):
    return (0, int(node_id), "") if str(node_id).isdigit() else (1, 0, str(node_id))
