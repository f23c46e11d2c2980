"""The short names of the input topics are defined once (leadflow.inputs_cli.INPUT_KINDS) and
are what `leadflow publish` accepts and `leadflow replay` resolves."""

from __future__ import annotations

import pytest

from leadflow import cli, inputs_cli
from streams.settings import Settings
from streams.topic_names import INPUT_TOPIC_FIELD, TopicNames


def test_one_definition_naming_every_input_topic():
    assert cli.INPUT_KINDS is inputs_cli.INPUT_KINDS
    assert sorted(inputs_cli.INPUT_KINDS.values()) == sorted(INPUT_TOPIC_FIELD.values())
    publish_kind = next(p for p in cli.publish.params if p.name == "kind")
    assert list(publish_kind.type.choices) == sorted(inputs_cli.INPUT_KINDS)


@pytest.mark.parametrize(("kind", "field"), [("form", "form_submits"), ("web", "web_activity"), ("crm", "crm_status")])
def test_replay_resolves_the_short_names(kind, field):
    settings = Settings()
    assert inputs_cli._topic_for(settings, kind) == getattr(TopicNames.from_settings(settings), field)
