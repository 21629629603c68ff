"""`comfyload check WORKFLOW [--host URL]`: the workflow (and its spec) checked the way ComfyUI
checks a prompt, against a server's /object_info, without sending anything to its queue: every
problem in one line, exit 2; a clean graph exit 0. Without --host (or COMFY_HOST) the pinned local
ComfyUI is started for the check and stopped after, the same way `comfyload run` does, so the
answer is the live server's, never a stale copy."""

from __future__ import annotations

from comfyload.common.errors import UserError
from comfyload.orchestration.server import LocalComfyUI, add_target_arguments, free_port
from comfyload.protocol import server_answers
from comfyload.protocol.client import ComfyClient
from comfyload.protocol.graph_check import graph_problems
from comfyload.protocol.workload import load_workflow, validate_against_server


def add_check_parser(sub) -> None:
    p = sub.add_parser(
        "check",
        help="check a workflow as ComfyUI would (links, types, required inputs, outputs, cycles, values, "
        "models, input files) without queueing it",
        description="Check an API-format workflow against a server's /object_info the way ComfyUI's "
        "validate_prompt does; every problem named at once (exit 2), or OK (exit 0).",
    )
    p.add_argument("workflow", help="a name in workflows/ or a path to an API-format .json file")
    add_target_arguments(
        p,
        "ComfyUI server URL (env COMFY_HOST); default: start the pinned local ComfyUI for the check",
        None,
        "port for the local ComfyUI (default: a free one)",
    )


def run_check(args) -> int:
    workflow = load_workflow(args.workflow)  # a UI-format file, bad JSON or spec: refused before any server
    if args.host:  # already parsed (host_url.host_from)
        return check_on(args.host, workflow, "the server given by --host/COMFY_HOST")
    with LocalComfyUI(port=args.port or free_port()) as server:
        return check_on(server.url, workflow, "the pinned local ComfyUI, started for this check")


def check_on(host: str, workflow, which: str) -> int:
    client = ComfyClient(host, completion="poll:1")
    try:
        stats = server_answers.system_stats(client)
        object_info = server_answers.object_info(client)
    finally:
        client.close()
    version = stats["system"].get("comfyui_version", "unknown version")
    where = f"checked against {host}, ComfyUI {version}: {which}"
    if workflow.expect_invalid:  # a validation drill's page: refused on purpose
        problems = graph_problems(workflow.graph, object_info, {i.key for i in workflow.inputs})
        if not problems:
            raise UserError(f"workflow {workflow.name}: its spec says expect_invalid, but the server would accept it")
        said = "; ".join(problems)
        print(f"workflow {workflow.name}: refused as its spec expects (expect_invalid): {said} ({where})")
        return 0
    try:
        validate_against_server(workflow.graph, object_info, workflow.name, uploaded={i.key for i in workflow.inputs})
    except UserError as exc:
        raise UserError(f"{exc} ({where})") from None
    print(f"workflow {workflow.name}: OK, {len(workflow.graph)} nodes as ComfyUI would accept them ({where})")
    return 0
