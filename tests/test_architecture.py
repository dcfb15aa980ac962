"""The package's import graph: layers that run a policy never reach up into training, evaluation,
the simulator or the server, and no two modules import each other in a cycle.

Every ``import`` statement counts, including those inside functions (they run too).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "mobile_vla"
LOWER = ("policy", "data", "processing", "model", "vocab")
UPPER = ("train", "eval", "sim", "serve", "commands", "demo")


def module_name(path: Path) -> str:
    parts = ["mobile_vla", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Absolute names of the ``mobile_vla`` modules ``path`` imports (relative imports resolved)."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
    modules = {module_name(p) for p in PACKAGE.rglob("*.py")}
    return {name for name in out if name in modules and name != module_name(path)}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in PACKAGE.rglob("*.py")}


def layer(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_policy_data_processing_and_model_never_import_upper_layers():
    bad = sorted(f"{m} -> {dep}" for m, deps in graph().items() if layer(m) in LOWER
                 for dep in deps if layer(dep) in UPPER)
    assert not bad, "lower layers import upper ones:\n" + "\n".join(bad)


def test_no_import_cycles():
    g = graph()
    # A package's __init__ importing its own submodules is how packages work, not a cycle.
    edges = {m: {d for d in deps if not (m.count(".") < d.count(".") and d.startswith(m + "."))} for m, deps in g.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_graph_is_read_correctly():
    """The checks above would pass vacuously on an empty graph: make sure they see real edges."""
    g = graph()
    assert "mobile_vla.policy.checkpoint" in g["mobile_vla.policy.streaming"]
    assert "mobile_vla.model.heads" in g["mobile_vla.model.vla"]
    assert layer("mobile_vla.sim.collect") == "sim" and layer("mobile_vla.demo") == "demo"
