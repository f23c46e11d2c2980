"""The layers import one way (issue 13):

    leadflow/  (tools + the composition root)  ->  agents/  (capabilities)  ->  streams/  (runtime)
    ->  configio/  (the configuration-file reader every layer uses)

``configio`` imports nothing of the project; ``streams`` nothing of ``agents`` or ``leadflow``; ``agents`` nothing of ``leadflow``; a
capability does not import another capability's ``agent.py`` (the composition root wires them);
and there is no import cycle among the project's modules, counting imports inside functions too
(a cycle hidden behind a function-level import is still a cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("configio", "streams", "agents", "leadflow")  # lowest first: each may import only those before it


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for layer in LAYERS for p in sorted((ROOT / layer).rglob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    """Project modules imported anywhere in the file (module level or inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_only_the_layers_below_it(layer):
    above = set(LAYERS[LAYERS.index(layer) + 1 :])
    wrong = sorted(
        f"{m} -> {t}" for m, ts in GRAPH.items() if m.split(".")[0] == layer for t in ts if t.split(".")[0] in above
    )
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_no_capability_imports_another_capabilitys_agent():
    wrong = sorted(
        f"{m} -> {t}"
        for m, ts in GRAPH.items()
        if m.startswith("agents.")
        for t in ts
        if t.startswith("agents.") and t.endswith(".agent") and t.split(".")[1] != m.split(".")[1]
    )
    assert not wrong, "\n".join(wrong)


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    # A package's __init__ re-exporting its modules is not a cycle of the code's design.
    cycles = [c for c in _cycles() if not all(m == c[0] or m.startswith(c[0] + ".") for m in c)]
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_checks_see_the_project():
    assert {"streams.app", "agents.scoring.rules", "leadflow.compose", "leadflow.cli"} <= set(GRAPH)
    assert "streams.app" in GRAPH["leadflow.compose"]
