"""Business rules are plain Python: every module of a capability package except its Faust
wiring (``agent.py``) and its store adapters (``*_store.py``: Redis behind the rules) imports no
streaming, broker, cache, retry or metrics library."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

AGENTS = Path(__file__).resolve().parents[2] / "agents"
FORBIDDEN = {"faust", "aiokafka", "kafka", "redis", "prometheus_client", "mode", "rocksdict", "streams", "tenacity"}
PACKAGES = ("domain", "capture", "scoring", "routing", "sla", "disposition")
PURE_MODULES = sorted(
    p
    for pkg in PACKAGES
    for p in (AGENTS / pkg).glob("*.py")
    if p.name != "agent.py" and not p.name.endswith("_store.py")
)


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_each_capability_has_its_pure_modules():
    names = {f"{p.parent.name}/{p.name}" for p in PURE_MODULES}
    assert {
        "scoring/rules.py",
        "routing/rules.py",
        "routing/roster.py",
        "routing/config.py",
        "routing/facts.py",
        "sla/rules.py",
        "disposition/rules.py",
        "capture/rules.py",
    } <= names


@pytest.mark.parametrize("path", PURE_MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_pure_module_imports_no_framework(path):
    assert not _imports(path) & FORBIDDEN


@pytest.mark.parametrize("path", PURE_MODULES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_modules_stay_small(path):
    assert len(path.read_text().splitlines()) < 500
