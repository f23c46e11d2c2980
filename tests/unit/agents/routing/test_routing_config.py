"""routing.yaml: the default reproduces the brief; bad files are refused with the key named."""

from __future__ import annotations

import copy

import pytest

from agents.routing.config import parse_routing_config
from agents.routing.exceptions import RoutingConfigError
from tests.repo_config import default_raw


def with_change(path: str, value):
    raw = copy.deepcopy(default_raw("routing.yaml"))
    node = raw
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return raw


def problems(raw) -> list[str]:
    with pytest.raises(RoutingConfigError) as info:
        parse_routing_config(raw)
    return info.value.problems


def test_default_config_is_the_briefs_table(routing_config):
    assert routing_config.first_touch_sla_ms("P1", None) == 10 * 60_000
    assert routing_config.first_touch_sla_ms("P2", None) == 48 * 3_600_000
    assert routing_config.first_touch_sla_ms("P3", None) == 5 * 86_400_000
    assert routing_config.priorities["P1"].role == "AE" and routing_config.priorities["P2"].role == "SDR"
    assert routing_config.priorities["P3"].nurture and routing_config.priorities["P3"].role is None
    assert routing_config.fit_bump.from_priority == "P2" and routing_config.fit_bump.to_priority == "P1"
    assert routing_config.reassignment.to == "next_rep"


def test_segment_overrides_and_segments(routing_config):
    assert routing_config.segment_for(5000) == "enterprise"
    assert routing_config.segment_for(500) == "mid_market"
    assert routing_config.segment_for(10) == "smb"
    assert routing_config.segment_for(None) is None
    assert routing_config.first_touch_sla_ms("P2", "enterprise") == 24 * 3_600_000
    assert routing_config.first_touch_sla_ms("P2", "smb") == 48 * 3_600_000


@pytest.mark.parametrize(
    "path,value,expected",
    [
        (
            "priorities.P1.first_touch_sla_minutes",
            "soon",
            "priorities.P1.first_touch_sla_minutes: expected a number, got 'soon'",
        ),
        ("priorities.P1.first_touch_sla_minutes", 0, "priorities.P1.first_touch_sla_minutes"),
        ("priorities.P2", ..., "priorities.P2: required key is missing"),
        ("priorities.P1.nurture", True, "priorities.P1: set exactly one of"),
        ("nurture_owner", "revops-triage", "nurture_owner: must differ"),
        ("fit_bump.to_priority", "P3", "fit_bump.to_priority: 'P3' is not more urgent than 'P2'"),
        ("reassignment.to", "boss", "reassignment.to: expected one of the allowed values, got 'boss'"),
        ("fit_bump.segments", ["giant"], "fit_bump.segments: unknown segment 'giant'"),
        ("segment_sla_overrides", {"giant": {"P1": 5}}, "segment_sla_overrides.giant: unknown segment"),
        ("surprise", 1, "surprise: unknown key"),
        ("fallback", ..., "fallback: required key is missing"),
    ],
)
def test_bad_config_names_the_key(path, value, expected):
    assert any(expected in p for p in problems(with_change(path, value))), problems(with_change(path, value))


def test_lead_type_without_condition_is_refused(routing_raw):
    raw = copy.deepcopy(routing_raw)
    raw["lead_types"].append({"name": "anything", "priority": "P1"})
    assert any("lead_types[7] (name 'anything'): has no condition" in p for p in problems(raw))
