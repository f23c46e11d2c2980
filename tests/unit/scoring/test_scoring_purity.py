"""The scoring model is plain Python: no streaming, broker, cache or metrics libraries."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[3] / "agents" / "scoring"
FORBIDDEN = ("faust", "aiokafka", "kafka", "redis", "prometheus_client", "mode", "rocksdict", "streams")
WIRING = {"agent.py"}  # the lead engineer's Faust wiring lives next to the pure model


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


PURE_MODULES = sorted(p for p in PACKAGE.glob("*.py") if p.name not in WIRING)


@pytest.mark.parametrize("path", PURE_MODULES, ids=lambda p: p.name)
def test_pure_module_imports_no_framework(path):
    assert not _imports(path) & set(FORBIDDEN)


@pytest.mark.parametrize("path", PURE_MODULES, ids=lambda p: p.name)
def test_modules_stay_small(path):
    assert len(path.read_text().splitlines()) < 500
