"""Every file the README, the docs and the configuration files point at exists in this
repository (issue 13: no references to files outside it, none to files that moved away)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOP = (
    "streams",
    "agents",
    "leadflow",
    "docs",
    "config",
    "schemas",
    "scripts",
    "tests",
    "grafana",
    "deploy",
    "benchmarks",
    "prometheus",
    ".ci",
)
SOURCES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "config").glob("*.yaml"))]
PATH = re.compile(r"(?<![\w./-])((?:" + "|".join(re.escape(t) for t in TOP) + r")/[\w./-]*\w)")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _references(text: str) -> set[str]:
    found = {m.group(1) for m in PATH.finditer(text)}
    found |= {
        m.group(1) for m in LINK.finditer(text) if "://" not in m.group(1) and not m.group(1).startswith("mailto:")
    }
    return found


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_referenced_path_exists_in_the_repository(source):
    text = source.read_text()
    assert "../shared" not in text, f"{source.name} points outside the repository"
    missing = []
    for ref in sorted(_references(text)):
        base = ROOT if not ref.startswith((".", "..")) and "/" in ref else source.parent
        target = (base / ref).resolve()
        if any(ch in ref for ch in "*<>{}"):  # a pattern or a placeholder, not a file
            continue
        if not target.exists():
            missing.append(ref)
    assert not missing, f"{source.relative_to(ROOT)} points at paths that do not exist: {missing}"


def test_the_check_finds_references():
    assert {"leadflow/compose.py", "docs/reliability.md"} <= _references(
        "see `leadflow/compose.py` and [reliability](docs/reliability.md)"
    )
