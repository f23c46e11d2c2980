"""The routing rules are plain Python: no streaming, broker, cache or metrics libraries."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[3] / "agents" / "routing"
FORBIDDEN = {"faust", "aiokafka", "kafka", "redis", "prometheus_client", "mode", "rocksdict", "streams", "tenacity"}
WIRING = {"agent.py"}
PURE_MODULES = sorted(p for p in PACKAGE.glob("*.py") if p.name not in WIRING)


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_package_has_pure_modules():
    assert {p.name for p in PURE_MODULES} >= {"rules.py", "roster.py", "config.py", "facts.py"}


@pytest.mark.parametrize("path", PURE_MODULES, ids=lambda p: p.name)
def test_pure_module_imports_no_framework(path):
    assert not _imports(path) & FORBIDDEN


@pytest.mark.parametrize("path", PURE_MODULES, ids=lambda p: p.name)
def test_modules_stay_small(path):
    assert len(path.read_text().splitlines()) < 500
