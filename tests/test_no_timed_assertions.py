"""No test may pass or fail on how fast this (shared) machine runs: a figure is checked against the
server's own timestamps or a case worked out by hand from the records, and speed goals live in
bench/ as ratios (docs/development.md). This reads every test module and flags the shapes a timed
assertion takes: a stopwatch or a latency figure bounded from above by a fixed number of seconds
or ms, and `pytest.approx(<number>, abs=...)` on such a figure. Lower bounds that hold by
construction (a 1-s Sleep spans >= 1000 ms on the server's clock) are allowed; comparisons with a
`deadline` are hang guards (they end a wait that would otherwise never end), not measurements.

Only modules that measure something real are read: integration tests, and any module that
reads a clock itself; the unit tests of the metrics model and the queueing simulation bound
figures they computed from made-up records, which no machine's speed can change."""

import ast
import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
CLOCKS = {"time", "monotonic", "perf_counter"}
TIMED = re.compile(r"_ms\b|_s\b|elapsed|took|e2e|latency|duration|wall|p50|p95|p99|images_per_min|seconds|gaps?\b")
STOPWATCH = re.compile(r"\belapsed\b|\btook\b|\bwall")  # a stopwatch reading: no upper bound of any kind
SAME_RUN = re.compile(r"imbalance|ratio|share")  # one run's figures over each other: allowed
REVIEWED = "# not timed:"  # on the assert's line, with the reason: a reviewed exception


def reads_a_clock(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr in CLOCKS
        and isinstance(n.func.value, ast.Name)
        and n.func.value.id == "time"
        for n in ast.walk(node)
    )


def is_timed(node: ast.AST) -> bool:
    text = ast.unparse(node)
    return reads_a_clock(node) or (bool(TIMED.search(text)) and not SAME_RUN.search(text))


def is_number(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp):
        node = node.operand
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool)


def is_guard(node: ast.AST) -> bool:
    return "deadline" in ast.unparse(node)


def upper_bounds(compare: ast.Compare):
    """(timed side, bound) for each link of `a < b <= c ...` that caps a timed figure."""
    sides = [compare.left, *compare.comparators]
    for op, left, right in zip(compare.ops, sides, sides[1:]):
        if isinstance(op, (ast.Lt, ast.LtE)):
            yield left, right
        elif isinstance(op, (ast.Gt, ast.GtE)):
            yield right, left


def stopwatch_names(tree: ast.AST) -> set[str]:
    """Names that hold a stopwatch reading under a neutral name: assigned (alone or unpacked) from
    a call to a function of this module that subtracts clock readings, like `_, clean = timed_get(url)`
    (a function that only returns a timestamp, `killed = kill_when(...)`, is no stopwatch)."""
    timers = {
        f.name
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef)
        and any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.Sub) and reads_a_clock(n) for n in ast.walk(f))
    }
    names = set()
    for a in ast.walk(tree):
        if isinstance(a, ast.Assign) and isinstance(a.value, ast.Call) and ast.unparse(a.value.func) in timers:
            names |= {n.id for t in a.targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def timed_assertions(source: str) -> list[tuple[int, str]]:
    """(line, text) of each assertion in `source` whose outcome depends on the machine's speed."""
    found, lines, tree = [], source.splitlines(), ast.parse(source)
    watches = stopwatch_names(tree) - {"response", "r", "result"}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assert) or REVIEWED in lines[node.lineno - 1]:
            continue
        for n in ast.walk(node.test):
            if isinstance(n, ast.Compare):
                for figure, bound in upper_bounds(n):
                    if is_guard(figure) or is_guard(bound):
                        continue
                    stopwatch = reads_a_clock(figure) or STOPWATCH.search(ast.unparse(figure))
                    stopwatch = stopwatch or any(isinstance(n, ast.Name) and n.id in watches for n in ast.walk(figure))
                    if stopwatch or (is_timed(figure) and is_number(bound)):
                        found.append((node.lineno, ast.unparse(node.test)))
            elif isinstance(n, ast.Call) and ast.unparse(n.func).endswith("approx"):
                if n.args and is_number(n.args[0]) and any(k.arg == "abs" for k in n.keywords):
                    if is_timed(node.test):
                        found.append((node.lineno, ast.unparse(node.test)))
    return sorted(set(found))


def measures_something_real(source: str) -> bool:
    return "pytest.mark.integration" in source or reads_a_clock(ast.parse(source))


def test_no_test_module_asserts_on_the_machines_speed():
    offenders = []
    for path in sorted(TESTS.glob("test_*.py")):
        source = path.read_text()
        if measures_something_real(source):
            offenders += [f"{path.name}:{line}: assert {text}" for line, text in timed_assertions(source)]
    assert not offenders, "timed assertions (compare with the server's stamps, or move to bench/):\n" + "\n".join(
        offenders
    )


def test_the_guard_flags_the_shapes_a_timed_assertion_takes():
    """The guard itself: each of these failed on a busy machine once, or would."""
    flagged = [
        "assert 1000 <= r.execution_ms <= 1200",
        "assert time.monotonic() - started < 3.0",
        "assert elapsed <= run_time + 60",
        "assert s['p50_ms'] == pytest.approx(1000, abs=250)",
        "assert r.node_ms['1'] == pytest.approx(1000, abs=200)",
        "assert 95 <= s['images_per_minute'] <= 121",
        "assert 0 < outage['recovery_s'] <= 120",
        "def timed_get(url):\n    started = time.monotonic()\n    return get(url), time.monotonic() - started\n"
        "_, clean = timed_get(url)\nassert slow >= 0.3 > clean",
    ]
    allowed = [
        "assert r.execution_ms >= 1000",
        "assert r.execution_ms == server['execution_end'] - server['execution_start']",
        "assert time.time() < deadline",
        "assert killed <= outage['start_ts'] <= first_failure",
        "assert summary['e2e_ms']['max'] == pytest.approx(max(r['e2e_ms'] for r in prompts), abs=0.01)",
        "assert s['max_in_flight'] <= 3",
        "assert balance['latency_imbalance'] < 1.3",
        "assert min(gaps) < 1.0  # not timed: why, in words",
    ]
    assert [len(timed_assertions(line)) for line in flagged] == [1] * len(flagged)
    assert [timed_assertions(line) for line in allowed] == [[]] * len(allowed)
