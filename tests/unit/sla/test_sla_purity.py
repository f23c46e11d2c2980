"""The SLA and disposition rules are plain Python: no streaming, broker, cache or metrics
libraries (only the agent modules wire them to Faust and Redis)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

AGENTS = Path(__file__).resolve().parents[3] / "agents"
FORBIDDEN = {"faust", "aiokafka", "kafka", "redis", "prometheus_client", "mode", "rocksdict", "streams"}
PURE = sorted(p for pkg in ("sla", "disposition") for p in (AGENTS / pkg).glob("*.py") if p.name != "agent.py")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", PURE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_pure_module_imports_no_framework(path):
    assert not _imports(path) & FORBIDDEN


@pytest.mark.parametrize("path", PURE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_modules_stay_small(path):
    assert len(path.read_text().splitlines()) < 500
