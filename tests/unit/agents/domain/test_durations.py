"""One duration parser (agents.domain.durations) for sla.yaml, the demo's compressed configs and
the dev stack's Prometheus/Grafana variables."""

from __future__ import annotations

import pytest

from agents.domain.durations import format_seconds, is_duration, parse_duration_ms
from agents.sla.config import parse_duration_ms as sla_parse
from leadflow.demo.compressed_time import compress_sla_config
from leadflow.devstack.prometheus import grafana_to_promql

H = 3_600_000


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("90s", 90_000),
        ("10m", 600_000),
        ("2h", 2 * H),
        ("5d", 120 * H),
        (" 1.5h ", 5_400_000),
        ("0s", 0),
        ("1h30m", 5_400_000),
        ("1h 30m", 5_400_000),
        ("500ms", 500),
        ("1w", 168 * H),
        ("1y", 8760 * H),
        ("1.5 h", 5_400_000),
    ],
)
def test_durations_with_units(text, ms):
    assert parse_duration_ms(text) == ms and is_duration(text)


@pytest.mark.parametrize("text", ["soon", "10", "h", "-5m", "5 minutes", "", "1h30", None, 90])
def test_anything_else_is_refused_with_the_examples(text):
    assert not is_duration(text)
    with pytest.raises(ValueError, match=r"expected a duration such as '90s', '10m', '2h' or '5d', got "):
        parse_duration_ms(text)


def test_every_user_parses_with_the_one_parser():
    assert sla_parse is parse_duration_ms
    compressed = compress_sla_config({"escalation": {"P1": {"tiers": [{"after": "1h30m"}, {"after": "1w"}]}}}, 60)
    assert [t["after"] for t in compressed["escalation"]["P1"]["tiers"]] == ["90s", "10080s"]
    assert grafana_to_promql("x[$__range_s] y[$__range_ms]", range_="1h30m") == "x[5400] y[5400000]"
    assert format_seconds(1) == "0.001s" and format_seconds(120_000) == "120s"
