"""The floors: lower packages never import higher ones, and no module imports itself round a circle.

Every import counts, those inside functions too (a lazy import up a floor is still an upward
arrow). The package root (`tflottery/__init__.py`, the lazy public face) is above every floor.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "tflottery"
FLOORS = {"core": 0, "config": 1, "data": 2, "models": 2, "pruning": 3, "engine": 4, "tickets": 5, "analysis": 6,
          "deploy": 6, "api": 7, "extend": 7, "plots": 5, "report": 5, "tuning": 8, "recipes": 9, "cli": 10}
TF_FREE = ["tflottery.core.errors", "tflottery.core.values", "tflottery.core.files", "tflottery.core.runner",
           "tflottery.config", "tflottery.pruning.resolve", "tflottery.engine.resolve", "tflottery.engine.store",
           "tflottery.engine.plan", "tflottery.engine.graph", "tflottery.engine.executors",
           "tflottery.engine.executors.local", "tflottery.engine.executors.processes", "tflottery.engine.executors.ray",
           "tflottery.engine.trainer.registry", "tflottery.engine.trainer.tfkeras", "tflottery.engine.trainer.keras3",
           "tflottery.data.sources", "tflottery.analysis.registry"]


def modules() -> dict:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports_of(path: Path, name: str, known: set) -> set:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            submodules = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in known]
            targets = submodules if len(submodules) == len(node.names) else [node.module, *submodules]
        else:
            continue
        for target in targets:
            if target.startswith("tflottery.") and target in known and target != name:
                found.add(target)
    return found


def floor(module: str) -> int:
    return FLOORS[module.split(".")[1]]


GRAPH = {name: imports_of(path, name, set(modules())) for name, path in modules().items() if name != "tflottery"}


def test_every_package_has_a_floor():
    assert {m.split(".")[1] for m in GRAPH} <= set(FLOORS)


def test_no_import_runs_up_a_floor():
    upward = sorted(f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets if floor(b) > floor(a))
    assert upward == []
    sideways = sorted(f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets
                      if floor(b) == floor(a) and a.split(".")[1] != b.split(".")[1])
    assert sideways == []  # packages of one floor stay apart


def test_no_circle():
    state, circles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(GRAPH.get(node, ())):
            if nxt not in GRAPH:
                continue  # a package facade's own name
            if state.get(nxt) == "open":
                circles.append(stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for node in sorted(GRAPH):
        if node not in state:
            visit(node, [node])
    assert circles == []


@pytest.mark.parametrize("module", TF_FREE)
def test_what_the_cli_checks_first_imports_no_tensorflow(module):
    import subprocess
    import sys

    code = f"import sys, {module}; sys.exit(3 if 'tensorflow' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], env={"TFLOTTERY_QUIET": "0", "PATH": ""}).returncode == 0
