"""The one YAML reader of every configuration file, for the capabilities: re-exported from
:mod:`configio.yamlio`, its home below ``streams`` so the runtime's schema registry reads its
file with it too (``streams`` must not import ``agents``, and pure modules must not import
``streams``: see :mod:`configio`)."""

from __future__ import annotations

from configio.yamlio import MAX_BYTES, MAX_NODES, YamlProblem, load_yaml_text, read_yaml

__all__ = ["MAX_BYTES", "MAX_NODES", "YamlProblem", "load_yaml_text", "read_yaml"]
