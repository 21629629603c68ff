"""Checks every input before load starts, the same way from the `python -m comfyload` wrapper
and from the Locust harness (where web UI fields can change them): options, workflows, book
profiles, and that the server can run the workflows."""

from __future__ import annotations

from dataclasses import dataclass

from comfyload.analysis.sla import SlaTargets, load_compare, load_sla
from comfyload.protocol import server_answers
from comfyload.protocol.client import ComfyClient, parse_completion
from comfyload.protocol.fleet import parse_hosts
from comfyload.protocol.workload import Workflow, load_workflow, parse_inject_sleep, validate_against_server
from comfyload.workloads import options as option_table
from comfyload.workloads.book import BookMix, load_book_mix
from comfyload.workloads.retry import RetryPolicy, parse_backoff


@dataclass
class RunPlan:
    """What a run will use, once its options are known to be good."""

    workflow: Workflow
    workflows: list[Workflow]
    book_mix: BookMix | None
    policy: RetryPolicy
    sla: SlaTargets


def plan_run(values: dict, user_classes: set[str]) -> RunPlan:
    """`values`: option name -> value (the option table's names). Raises UserError. Each value is
    checked once: its range and choices by the option table, its syntax by the code that parses it."""
    option_table.check_values(values)
    parse_completion(values["completion"])
    parse_inject_sleep(values["inject_sleep"])
    parse_hosts(values["comfy_hosts"])
    sla = load_sla(values["sla"])
    load_compare(values["sla"])  # its compare: section too, before a run that `reports compare` will read
    policy = RetryPolicy(values["max_retries"], parse_backoff(values["retry_backoff_sec"]))
    workflow = load_workflow(values["workflow"])
    books = "BookUser" in user_classes or ("OpenLoopUser" in user_classes and values["arrival_unit"] == "book")
    book_mix = load_book_mix(values["book_profile"], values["book_profiles"]) if books else None
    workflows = book_mix.all_workflows if book_mix else []
    if not book_mix or user_classes - {"BookUser", "OpenLoopUser"}:
        workflows = [workflow] + workflows
    if "OpenLoopUser" in user_classes and values.get("arrivals_trace"):
        from comfyload.workloads.trace import load_trace, trace_workflow_names  # the trace's workflows are checked too

        trace = load_trace(values["arrivals_trace"], values["trace_speed"])
        workflows += [
            load_workflow(name) for name in trace_workflow_names(trace, values["book_profiles"], values["workflow"])
        ]
    workflows = list({wf.path: wf for wf in workflows}.values())
    return RunPlan(workflow=workflows[0], workflows=workflows, book_mix=book_mix, policy=policy, sla=sla)


def check_server(client: ComfyClient, plan: RunPlan) -> tuple[dict, dict]:
    """(system_stats, object_info); UserError when unreachable or a workflow cannot run there."""
    stats = server_answers.system_stats(client)
    object_info = server_answers.object_info(client)
    for wf in plan.workflows:
        if wf.expect_invalid:  # a validation drill's page: the server's refusal is what is measured
            continue
        validate_against_server(wf.graph, object_info, wf.name, uploaded={i.key for i in wf.inputs})
    return stats, object_info
