"""The one YAML reader of every configuration file: scoring model, routing, SLA, roster, and
the runtime's schema registry (``schemas/registry.yaml``). Why it lives in ``configio``, below
``streams``: see the package docstring (``agents.domain.yamlio`` re-exports it).

Plain ``yaml.safe_load`` lets three kinds of bad file through, so this reader refuses them:
- a duplicated key (PyYAML keeps the last one silently: half a section vanishes);
- an alias bomb: a few lines of anchors and aliases that expand to billions of nodes. PyYAML
  shares the aliased objects, so loading is cheap, but validating or printing the result is
  not (a fuzz run printed a 2.3 GB error message). The composed node graph is counted with
  aliases expanded, before anything is built, and refused above ``max_nodes``;
- a file too large to be a configuration (``max_bytes``), before it is parsed.
Every problem is one line; ``read_yaml`` raises the caller's error class with the file name
as its source, so each message says which file was wrong.

The limits are safety bounds rather than business settings: far above any real file (the
scoring model is ~10 KB and ~1,500 nodes; a roster of 5,000 reps ~200k nodes), far below
what hurts.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from configio.messages import echo, yaml_error_line

MAX_BYTES = 8 * 1024 * 1024
MAX_NODES = 1_000_000


class YamlProblem(ValueError):
    """A YAML document that cannot be used; the message is one line."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """A duplicated key in the YAML is an error, not a silent 'last one wins'."""

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: keys given here may override
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # unhashable: SafeConstructor reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {echo(key, 80)}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml_text(text: str, *, max_nodes: int = MAX_NODES) -> Any:
    """Parse one YAML document; raises YamlProblem (one line) for anything unusable."""
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _count_nodes(node, {}, set(), max_nodes)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise YamlProblem(yaml_error_line(exc)) from None
    except RecursionError:
        raise YamlProblem("not valid YAML: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        if isinstance(exc, YamlProblem):
            raise
        raise YamlProblem(f"not valid YAML: {echo(str(exc), 200)[1:-1]}") from None
    finally:
        loader.dispose()


def read_yaml(
    path: str | Path,
    error: Callable[[list[str], str], Exception],
    *,
    max_bytes: int = MAX_BYTES,
    max_nodes: int = MAX_NODES,
) -> Any:
    """Read and parse a configuration file; every problem raises ``error([problem], str(path))``
    (the configuration error classes all take a problem list and a source)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise error([f"cannot read {path}: {exc.strerror or exc}"], str(path)) from None
    if len(data) > max_bytes:
        raise error([f"file is larger than {max_bytes:,} bytes; not a configuration file"], str(path))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error([f"not UTF-8 text (byte {exc.start})"], str(path)) from None
    try:
        return load_yaml_text(text, max_nodes=max_nodes)
    except YamlProblem as exc:
        raise error([str(exc)], str(path)) from None


def _count_nodes(node: Node, done: dict[int, int], active: set[int], limit: int) -> int:
    """Nodes under ``node`` with every alias expanded (an alias is the same node object, so
    each distinct node is counted once and reused); raises YamlProblem above ``limit``."""
    key = id(node)
    if key in done:
        return done[key]
    if isinstance(node, ScalarNode):
        return 1
    if key in active:
        raise YamlProblem(
            f"not valid YAML at line {node.start_mark.line + 1}: an alias refers to a "
            "node that contains it (recursive alias)"
        )
    active.add(key)
    total = 1
    if isinstance(node, SequenceNode):
        children = node.value
    elif isinstance(node, MappingNode):
        children = [child for pair in node.value for child in pair]
    else:
        children = []
    for child in children:
        total += _count_nodes(child, done, active, limit)
        if total > limit:
            line = node.start_mark.line + 1
            raise YamlProblem(
                f"not valid YAML at line {line}: more than {limit:,} nodes once aliases are expanded (an alias bomb?)"
            )
    active.discard(key)
    done[key] = total
    return total
