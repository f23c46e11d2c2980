"""No test module loads configuration at import: configuration comes from fixtures (the
conftest.py of tests/unit and of each test folder) or from tests.repo_config's cached functions,
called inside a test.

What runs at import is read from the syntax tree: every top-level statement with its decorators,
default values and class bodies, but no function or lambda body and no
``if __name__ == "__main__":`` block. A call there is refused if it names one of the project's
configuration loaders (LOADERS), or calls a function of tests/ whose body does (followed through
further calls of functions of tests/; decorated functions are not followed)."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The loaders, by their home module: a call whose dotted name (imports resolved) ends with one of
# these names loads configuration, wherever it is imported from (``agents.scoring`` re-exports
# ``load_model``, ``streams.codec`` re-exports ``SchemaRegistry``). The parse_* functions are not
# loaders: they validate data already in memory, such as a literal written in the test.
LOADERS = {
    "configio.yamlio": ("read_yaml", "load_yaml_text"),
    "agents.routing.config": ("load_routing_config",),
    "agents.sla.config": ("load_sla_config",),
    "agents.scoring.model": ("load_model",),
    "leadflow.compose": ("load_configs",),
    "streams.settings": ("Settings", "load_settings"),
    "streams.codec.avro": ("SchemaRegistry.load",),
    "tests.repo_config": ("default_routing_config", "default_scoring_model", "default_priority", "default_raw"),
}
# Loaders whose own names are too common to be recognised alone: matched with their module's name.
QUALIFIED_LOADERS = {
    "yaml": ("safe_load", "safe_load_all", "load", "load_all", "full_load", "unsafe_load"),
    "tests.integration.kafkatools": ("codec",),
}
SUFFIXES = [name.split(".") for names in LOADERS.values() for name in names] + [
    [module.rpartition(".")[2], name] for module, names in QUALIFIED_LOADERS.items() for name in names
]


@dataclass
class Module:
    name: str
    path: str
    tree: ast.Module
    imports: dict[str, str] = field(default_factory=dict)  # local name -> dotted origin
    functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = field(default_factory=dict)

    @classmethod
    def parse(cls, name: str, path: str, source: str) -> Module:
        module = cls(name, path, ast.parse(source))
        for node in module.tree.body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        module.imports[alias.asname] = alias.name
                    else:
                        module.imports[alias.name.partition(".")[0]] = alias.name.partition(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    module.imports[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                module.functions[node.name] = node
        return module

    def dotted(self, func: ast.expr) -> str | None:
        """``func``'s dotted name with the module's imports resolved; None if it is computed."""
        attrs: list[str] = []
        while isinstance(func, ast.Attribute):
            attrs.insert(0, func.attr)
            func = func.value
        if not isinstance(func, ast.Name):
            return None
        base = self.imports.get(func.id) or (f"{self.name}.{func.id}" if func.id in self.functions else func.id)
        return ".".join([base, *attrs])


@cache
def index_of_tests() -> dict[str, Module]:
    modules = {}
    for path in sorted((ROOT / "tests").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = Module.parse(name, str(path.relative_to(ROOT)), path.read_text())
    return modules


def evaluated(node: ast.AST) -> Iterator[ast.AST]:
    """``node`` and what Python evaluates with it: not the bodies of functions and lambdas."""
    yield node
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        children: list[ast.AST] = [*node.args.defaults, *(d for d in node.args.kw_defaults if d)]
        if not isinstance(node, ast.Lambda):
            children += node.decorator_list
    else:
        children = list(ast.iter_child_nodes(node))
    for child in children:
        yield from evaluated(child)


def is_main_guard(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test) in ('__name__ == "__main__"', "__name__ == '__main__'")


def is_loader(dotted: str) -> bool:
    parts = dotted.split(".")
    return any(parts[-len(suffix) :] == suffix for suffix in SUFFIXES)


def loads_config(module: Module, body: list[ast.stmt], seen: set[str]) -> str | None:
    """The first loader ``body`` calls, directly or through functions of tests/, as ``name (where)``."""
    for call in (n for stmt in body for n in evaluated(stmt) if isinstance(n, ast.Call)):
        dotted = module.dotted(call.func)
        if dotted is None:
            continue
        if is_loader(dotted):
            return f"{dotted} ({module.path}:{call.lineno})"
        owner, _, function = dotted.rpartition(".")
        target = index_of_tests().get(owner) if owner != module.name else module
        node = target.functions.get(function) if target else None
        if target and node and not node.decorator_list and dotted not in seen:
            found = loads_config(target, node.body, seen | {dotted})
            if found:
                return found
    return None


def import_time_loads(module: Module) -> list[str]:
    """``path:line: call`` for every statement that loads configuration when the module is imported."""
    problems = []
    for stmt in module.tree.body:
        if not is_main_guard(stmt):
            found = loads_config(module, [stmt], set())
            if found:
                problems.append(f"{module.path}:{stmt.lineno}: loads configuration at import: {found}")
    return problems


def test_no_test_module_loads_configuration_at_import():
    problems = [p for module in index_of_tests().values() for p in import_time_loads(module)]
    assert problems == [], "use a fixture (conftest.py) or call tests.repo_config inside the test:\n" + "\n".join(
        problems
    )


@pytest.mark.parametrize("module, names", [*LOADERS.items(), *QUALIFIED_LOADERS.items()])
def test_every_loader_named_exists(module, names):
    """A loader renamed or moved must be renamed here too, or the check would miss its calls."""
    for name in names:
        target = importlib.import_module(module)
        for attr in name.split("."):
            target = getattr(target, attr)
        assert callable(target), f"{module}.{name}"


LOADS = [
    ("model", "from agents.scoring import load_model\nMODEL = load_model('config/scoring-model.yaml')\n"),
    ("raw-yaml", "import yaml\nRAW = yaml.safe_load(open('config/sla.yaml').read())\n"),
    ("registry", "from streams.codec import Codec, SchemaRegistry\nCODEC = Codec(SchemaRegistry.load())\n"),
    ("settings", "from streams.settings import Settings\nSETTINGS = Settings(redis_retry_max_s=1)\n"),
    ("compose", "import leadflow.compose as compose\nCONFIGS = compose.load_configs(None)\n"),
    ("repo-config", "from tests import repo_config\nCONFIG = repo_config.default_routing_config()\n"),
    (
        "decorator",
        "import pytest\nfrom streams.settings import load_settings\n\n"
        "@pytest.mark.parametrize('s', [load_settings()])\ndef test_x(s):\n    pass\n",
    ),
    ("default", "from configio.yamlio import read_yaml\ndef f(raw=read_yaml('config/roster.yaml')):\n    pass\n"),
    (
        "class-body",
        "from agents.sla.config import load_sla_config\nclass T:\n    CONFIG = load_sla_config('sla.yaml')\n",
    ),
    (
        "own-function",
        "from agents.routing.config import load_routing_config\n"
        "def config():\n    return load_routing_config('routing.yaml')\nCONFIG = config()\n",
    ),
    ("shared-builder", "from tests.unit.agents.routing.helpers import rep, roster\nROSTER = roster([rep('a')])\n"),
]
DEFERRED = [
    ("in-test", "from agents.scoring import load_model\ndef test_x():\n    load_model('x')\n"),
    ("in-lambda", "from streams.settings import load_settings\nCASES = [lambda: load_settings()]\n"),
    (
        "main",
        "import sys\nfrom streams.settings import load_settings\nif __name__ == '__main__':\n    load_settings()\n",
    ),
    ("no-call", "from streams.settings import Settings\nNAMES = [n for n in Settings.model_fields]\n"),
    ("builder-no-config", "from tests.unit.agents.routing.helpers import rep\nREPS = [rep('a')]\n"),
]


@pytest.mark.parametrize(
    "source, refused",
    [(s, True) for _, s in LOADS] + [(s, False) for _, s in DEFERRED],
    ids=[i for i, _ in LOADS] + [i for i, _ in DEFERRED],
)
def test_the_check_refuses_loading_at_import_and_only_that(source, refused):
    problems = import_time_loads(Module.parse("tests.unit.synthetic", "synthetic.py", source))
    assert bool(problems) is refused, problems
