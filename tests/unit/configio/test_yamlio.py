"""The one YAML reader (configio.yamlio) is the one every configuration file goes through: the
capabilities' (re-exported by agents.domain.yamlio) and the runtime's schema registry, so a
duplicated key is an error everywhere, naming the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import agents.domain.config_errors as config_errors
import agents.domain.yamlio as domain_yamlio
import configio.messages as messages
import configio.yamlio as yamlio
from streams.codec import SchemaRegistry, SchemaRegistryError

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas"


def test_the_capabilities_and_the_runtime_share_one_reader():
    assert domain_yamlio.read_yaml is yamlio.read_yaml and domain_yamlio.load_yaml_text is yamlio.load_yaml_text
    assert config_errors.echo is messages.echo and config_errors.yaml_error_line is messages.yaml_error_line


def test_a_duplicated_subject_in_the_schema_registry_is_an_error_naming_the_file(tmp_path):
    schemas = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, schemas)
    registry = schemas / "registry.yaml"
    registry.write_text(registry.read_text() + "web_activity:\n  - {version: 1, id: 299, file: web_activity.v1.avsc}\n")
    with pytest.raises(
        SchemaRegistryError, match=r"registry\.yaml: not valid YAML at line \d+.*duplicate key 'web_activity'"
    ):
        SchemaRegistry.load(schemas)


def test_an_unreadable_registry_is_named(tmp_path):
    with pytest.raises(SchemaRegistryError, match=r"registry\.yaml: cannot read"):
        SchemaRegistry.load(tmp_path)
