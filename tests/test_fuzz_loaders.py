"""Property-based fuzz (Hypothesis) of every loader a user feeds: workflow JSON and its spec YAML,
SLA YAML, scenario YAML, book profiles, fault schedules, run-folder records for `reports build`
and `compare`. Whatever the input, a loader returns or raises UserError with one line (the CLI's
`error: ...`, exit 2); any other exception is a traceback a user would see. In-process for speed,
plus a few inputs through the CLIs. Bounded: FUZZ_EXAMPLES (default 40) examples per loader."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from synthetic import meta_for, prompt_record, write_run_folder

from comfyload.analysis.sla import load_compare, load_sla
from comfyload.common.errors import UserError
from comfyload.orchestration.faults import parse_fault_plan
from comfyload.orchestration.scenario import load_scenario, resolve_settings
from comfyload.protocol.workload import load_workflow, validate_against_server
from comfyload.workloads import options as opts
from comfyload.workloads.book import load_book_mix
from comfyload.workloads.preflight import plan_run
from reports.figures import report_summary, targets_for
from reports.run_folder import load_run

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
# derandomize: CI sees the same examples every run (FUZZ_SEED=random explores new ones by hand)
DERANDOMIZE = os.environ.get("FUZZ_SEED") != "random"
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def one_line_or_fine(call, *args, **kwargs):
    """The property: returns, or a one-line UserError."""
    try:
        return call(*args, **kwargs)
    except UserError as exc:
        text = str(exc)
        assert text and "\n" not in text, f"a UserError of {text.count(chr(10)) + 1} lines: {text!r}"
        return None


# ---- value strategies ---------------------------------------------------------------------------
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["", "1", "-1", "0.5", "abc", "../x", "/etc/passwd", "nan"]),
)


def tree(keys):
    """YAML/JSON-like values whose mapping keys are mostly the loader's own (so the fuzz gets past
    the first check), with lists, nesting and every scalar type."""
    key = st.one_of(st.sampled_from(keys), st.text(max_size=6)) if keys else st.text(max_size=6)
    return st.recursive(
        scalars,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(key, inner, max_size=5)),
        max_leaves=12,
    )


def mapping(keys):
    return st.dictionaries(st.one_of(st.sampled_from(keys), st.text(max_size=6)), tree(keys), max_size=6)


broken_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "a: [1",
            "a:\n  b: 1\n c: 2",
            "- x\n: y",
            "{",
            "a: !!python/object:os.system x",
            "\t- 1",
            "a: *nope",
            "%YAML 9\n---",
            "",
            "   \n# only a comment\n",
            "[1, 2]",
            "just text",
        ]
    ),
)


def write(tmp: Path, name: str, content) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_text(
            yaml.safe_dump(content, allow_unicode=True)
            if not name.endswith(".json")
            else json.dumps(content, allow_nan=True),
            encoding="utf-8",
        )
    return path


def fresh_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="fuzz-", dir=os.environ.get("FUZZ_TMP")))


# ---- workflow JSON + spec YAML ------------------------------------------------------------------
NODE_KEYS = ["class_type", "inputs", "_meta", "nodes", "links"]
SPEC_KEYS = [
    "varying",
    "inputs",
    "models",
    "description",
    "node",
    "input",
    "kind",
    "min",
    "max",
    "values",
    "file",
    "per_request",
    "expect_invalid",
    "varyings",
]
graphs = st.one_of(
    tree(NODE_KEYS),
    st.dictionaries(
        st.sampled_from(["1", "2", "3"]),
        st.fixed_dictionaries(
            {
                "class_type": st.sampled_from(["EmptyImage", "SaveImage", "LoadImage", "X"]),
                "inputs": st.dictionaries(st.sampled_from(["width", "image", "seed", "color"]), scalars, max_size=3),
            }
        ),
        max_size=3,
    ),
)


@FUZZ
@given(
    graph=graphs,
    spec=st.one_of(st.none(), mapping(SPEC_KEYS), broken_text),
    raw=st.one_of(
        st.none(), st.binary(max_size=40), st.sampled_from(['{"1": ', "[]", "null", '{"1": {"class_type": 1}}'])
    ),
)
def test_workflow_and_spec(graph, spec, raw):
    tmp = fresh_dir()
    path = write(tmp, "wf.json", raw if raw is not None else graph)
    if spec is not None:
        write(tmp, "wf.spec.yaml", spec)
    workflow = one_line_or_fine(load_workflow, str(path))
    if workflow is not None:
        info = {
            "EmptyImage": {"input": {"required": {"width": ["INT", {"min": 1, "max": 8192}]}}, "output": ["IMAGE"]},
            "SaveImage": {"input": {"required": {"images": ["IMAGE"]}}, "output": [], "output_node": True},
            "LoadImage": {"input": {"required": {"image": [["a.png"]]}}, "output": ["IMAGE", "MASK"]},
        }
        one_line_or_fine(validate_against_server, workflow.graph, info, workflow.name)


# ---- SLA YAML (targets and compare thresholds) --------------------------------------------------
SLA_KEYS = [
    "throughput_images_per_min",
    "concurrency_books",
    "latency_p95_s",
    "error_budget_pct",
    "recovery_s",
    "warmup",
    "seconds",
    "prompts",
    "compare",
    "p95_pct",
    "throughput_pct",
    "confidence_pct",
    "bootstrap_samples",
]


@FUZZ
@given(content=st.one_of(mapping(SLA_KEYS), broken_text))
def test_sla_file(content):
    path = write(fresh_dir(), "sla.yaml", content)
    one_line_or_fine(load_sla, str(path))
    one_line_or_fine(load_compare, str(path))


# ---- scenario YAML (with its options and a fault section) ----------------------------------------
SCENARIO_KEYS = [
    "description",
    "user_class",
    "users",
    "spawn_rate",
    "run_time",
    "shape",
    "fault",
    "expected",
    "schedule",
    "checks",
    "at",
    "crash",
    "proxy",
    "sleep",
    "for",
] + [o.name for o in opts.OPTIONS]


class Args:
    """What the wrapper's parser gives when nothing is on the command line."""

    users = spawn_rate = run_time = user_class = output = None
    workers = 0


@FUZZ
@given(content=st.one_of(mapping(SCENARIO_KEYS), broken_text))
def test_scenario_file(content, monkeypatch):
    for o in opts.OPTIONS:
        monkeypatch.delenv(o.env, raising=False)
    monkeypatch.delenv("COMFY_CONCURRENCY", raising=False)
    path = write(fresh_dir(), "scenario.yaml", content)
    scenario = one_line_or_fine(load_scenario, str(path))
    if scenario is not None:
        settings_ = one_line_or_fine(resolve_settings, Args(), scenario)
        if settings_ is not None:
            one_line_or_fine(plan_run, settings_, {settings_["user_class"]})


# ---- fault schedules ---------------------------------------------------------------------------
FAULT_KEYS = [
    "expected",
    "schedule",
    "checks",
    "at",
    "for",
    "crash",
    "restart_after",
    "proxy",
    "toxic",
    "latency",
    "jitter",
    "stream",
    "sleep",
    "seconds",
    "type",
    "attributes",
    "rate",
]


@FUZZ
@given(section=tree(FAULT_KEYS))
def test_fault_schedule(section):
    one_line_or_fine(parse_fault_plan, section, "scenario.yaml")


# ---- book profiles -----------------------------------------------------------------------------
BOOK_KEYS = ["small", "pages", "workflow", "workflows", "medium"]


@FUZZ
@given(
    content=st.one_of(mapping(BOOK_KEYS), broken_text),
    mix=st.one_of(
        st.sampled_from(["small", "small:2,medium:1", "medium:x", ":", "small:-1", ""]), st.text(max_size=10)
    ),
)
def test_book_profiles(content, mix):
    path = write(fresh_dir(), "books.yaml", content)
    one_line_or_fine(load_book_mix, mix, str(path))


# ---- unknown keys: every loader names a misspelt key, its place and the nearest known key ---------
SMOKE_GRAPH = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "color": 0}}}


def _spec(tmp, text):
    write(tmp, "wf.json", SMOKE_GRAPH)
    write(tmp, "wf.spec.yaml", text)
    return load_workflow(str(tmp / "wf.json"))


# loader -> (its known keys, a file or section that puts the key `K` where that loader reads it)
KEYED = {
    "spec": (
        ("description", "varying", "models", "inputs", "expect_invalid"),
        lambda t, k: _spec(t, f"{json.dumps(k)}: []\n"),
    ),
    "spec varying entry": (
        ("node", "input", "kind", "min", "max", "values"),
        lambda t, k: _spec(t, f"varying:\n  - {{node: '1', input: color, {json.dumps(k)}: 1}}\n"),
    ),
    "scenario": (
        tuple(
            sorted(
                {"description", "user_class", "users", "spawn_rate", "run_time", "shape", "fault"}
                | {o.name for o in opts.OPTIONS} - {"run_dir", "scenario_name"}
            )
        ),
        lambda t, k: load_scenario(str(write(t, "sc.yaml", f"users: 1\n{json.dumps(k)}: 1\n"))),
    ),
    "SLA": (
        (
            "throughput_images_per_min",
            "concurrency_books",
            "latency_p95_s",
            "error_budget_pct",
            "recovery_s",
            "warmup",
            "compare",
        ),
        lambda t, k: load_sla(str(write(t, "sla.yaml", f"latency_p95_s: 5\n{json.dumps(k)}: 1\n"))),
    ),
    "SLA compare": (
        ("p95_pct", "throughput_pct", "confidence_pct", "bootstrap_samples"),
        lambda t, k: load_compare(str(write(t, "sla.yaml", f"latency_p95_s: 5\ncompare:\n  {json.dumps(k)}: 1\n"))),
    ),
    "book profile": (
        ("pages", "workflow", "workflows"),
        lambda t, k: load_book_mix(
            "small", str(write(t, "books.yaml", f"small: {{workflow: cpu_smoke, pages: 2, {json.dumps(k)}: 1}}\n"))
        ),
    ),
    "fault section": (
        ("expected", "schedule", "checks"),
        lambda t, k: parse_fault_plan({"expected": "x", "schedule": [], k: 1}, "sc.yaml"),
    ),
    "fault schedule item": (
        ("at", "for", "proxy", "crash", "inject_sleep"),
        lambda t, k: parse_fault_plan({"schedule": [{"at": 1, "crash": {}, k: 1}]}, "sc.yaml"),
    ),
}


@st.composite
def typo_of(draw, key: str):
    """A misspelling a person makes: a letter doubled, dropped, swapped, or a plural `s`."""
    i = draw(st.integers(0, len(key) - 1))
    kind = draw(st.sampled_from(["double", "drop", "swap", "plural"]))
    if kind == "double":
        return key[: i + 1] + key[i] + key[i + 1 :]
    if kind == "drop" and len(key) > 3:
        return key[:i] + key[i + 1 :]
    if kind == "swap" and i < len(key) - 1:
        return key[:i] + key[i + 1] + key[i] + key[i + 2 :]
    return key + "s"


@FUZZ
@given(which=st.sampled_from(sorted(KEYED)), data=st.data())
def test_a_misspelt_key_is_refused_naming_the_nearest_known_key(which, data):
    known, load = KEYED[which]
    key = data.draw(st.sampled_from(known))
    typo = data.draw(typo_of(key))
    if typo in known or not typo.replace("_", "").isalpha():
        return
    with pytest.raises(UserError) as err:
        load(fresh_dir(), typo)
    text = str(err.value)
    assert "\n" not in text and "unknown" in text and repr(typo) in text, text
    assert "did you mean" in text or "known:" in text, text


def test_a_misspelt_spec_key_is_refused_with_its_line():
    """`varyings:` silently accepted would vary nothing: the server's cache would answer."""
    with pytest.raises(UserError) as err:
        _spec(fresh_dir(), "description: x\nvaryings:\n  - {node: '1', input: color, kind: nonce}\n")
    assert "wf.spec.yaml: line 2: unknown spec key 'varyings' (did you mean 'varying'?)" in str(err.value)


@FUZZ
@given(key=st.sampled_from(["users", "run_time", "workflow", "jobs"]), first=scalars, second=scalars)
def test_a_key_given_twice_is_refused(key, first, second):
    path = write(fresh_dir(), "sc.yaml", f"{key}: {json.dumps(first)}\ndescription: x\n{key}: {json.dumps(second)}\n")
    with pytest.raises(UserError, match=f"sc.yaml line 3: key '{key}' is given twice \\(line 1 too\\)"):
        load_scenario(str(path))


# ---- run-folder records: reports build and compare ---------------------------------------------
RECORD_KEYS = sorted(prompt_record(1.0, 2.0)) + [
    "ts",
    "name",
    "source",
    "gpu",
    "util_gpu",
    "mem_used_mb",
    "page",
    "book_id",
    "start_ts",
    "pages",
    "retry_count",
    "needs_regeneration",
]
GOOD = [prompt_record(1000.0 + i, 1001.5 + i) for i in range(6)]


def damaged(records, edits):
    out = [dict(r) for r in records]
    for index, key, value in edits:
        out[index % len(out)][key] = value
    return out


record_edits = st.lists(
    st.tuples(st.integers(0, 5), st.sampled_from(RECORD_KEYS), tree(RECORD_KEYS)), min_size=1, max_size=4
)
extra_records = st.lists(
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["prompt", "page", "book", "gpu", "event"])},
        optional={k: tree([]) for k in RECORD_KEYS if k != "kind"},
    ),
    max_size=3,
)


@FUZZ
@given(edits=record_edits, extra=extra_records)
def test_run_folder_records_summarised(edits, extra):
    run = write_run_folder(fresh_dir() / "run", damaged(GOOD, edits) + extra, history=[])
    folder = one_line_or_fine(load_run, run)
    if folder is not None:
        targets = one_line_or_fine(targets_for, folder, None)
        if targets is not None:
            one_line_or_fine(report_summary, folder, targets)


# no shrinking here: a whole build per example would shrink for minutes; the failing example is printed as found
@settings(
    max_examples=max(3, EXAMPLES // 8),
    deadline=None,
    database=None,
    derandomize=DERANDOMIZE,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(edits=record_edits, meta=mapping(["scenario", "server", "parameters", "comfyui", "workflow", "sla", "gpu"]))
def test_run_folder_built_and_compared(edits, meta):
    """The whole `reports build` (charts included) and `compare` on damaged folders: fewer examples."""
    from reports.build import build
    from reports.compare import compare_runs

    tmp = fresh_dir()
    a = write_run_folder(tmp / "a", GOOD, history=[], meta=meta_for())
    b = write_run_folder(tmp / "b", damaged(GOOD, edits), history=[], meta={**meta_for(), **meta})
    one_line_or_fine(build, b)
    one_line_or_fine(compare_runs, a, b, str(REPO / "sla.yaml"))


# ---- a few through the CLIs (the exit code and the one line a user sees) ------------------------
def cli(*args, env=None):
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(REPO),
        env={**os.environ, **(env or {})},
    )


CLI_CASES = [
    ("sla", "a: [1"),
    ("sla", ""),
    ("sla", "latency_p95_s: fast"),
    ("scenario", "users: -2"),
    ("scenario", "fault: {schedule: [{at: x}]}"),
    ("scenario", "user_class: [1]\n"),
    ("scenario", "\tx"),
    ("workflow", '{"1": {"class_type": "X", "inputs": {"a": 1}'),
    ("workflow", "[]"),
]


@pytest.mark.parametrize("kind,content", CLI_CASES)
def test_bad_inputs_through_the_run_cli(tmp_path, kind, content):
    path = write(tmp_path, {"sla": "s.yaml", "scenario": "sc.yaml", "workflow": "w.json"}[kind], content)
    flag = {"sla": ["--sla", str(path)], "scenario": ["--scenario", str(path)], "workflow": ["--workflow", str(path)]}[
        kind
    ]
    done = cli("-m", "comfyload", "run", "--host", "http://127.0.0.1:9", *flag)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr


def test_damaged_records_through_reports_build_and_compare(tmp_path):
    bad = write_run_folder(
        tmp_path / "bad", damaged(GOOD, [(2, "e2e_ms", "slow"), (3, "done_ts", {"a": 1})]), history=[]
    )
    good = write_run_folder(tmp_path / "good", GOOD, history=[])
    for args in (["build", str(bad)], ["compare", str(good), str(bad)]):
        done = cli("-m", "reports", *args)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "e2e_ms: expected a number" in lines[0], done.stderr
