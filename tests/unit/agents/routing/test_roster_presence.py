"""Routing's roster presence check: at worker start, and with every health PING."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from agents.routing.roster_presence_store import RosterWatch, check_roster_at_start

SETTINGS = SimpleNamespace(
    redis_url="redis://user:secret@redis:6379/0", redis_key_prefix="p", roster_path="config/roster.yaml"
)


class Gauge:
    def __init__(self) -> None:
        self.value = None

    def set(self, value: float) -> None:
        self.value = value


class SyncRedis:
    def __init__(self, keys: set[str]) -> None:
        self.keys = keys

    def exists(self, key: str) -> int:
        return int(key in self.keys)


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_at_start_a_missing_roster_is_one_loud_warning_without_the_password(caplog):
    gauge = Gauge()
    assert check_roster_at_start(SyncRedis(set()), SETTINGS, gauge) is False
    assert gauge.value == 0
    (warning,) = _warnings(caplog)
    assert "no sales roster in Redis" in warning and "leadflow roster load --if-empty" in warning
    assert "secret" not in warning and "'p'" in warning
    caplog.clear()
    assert check_roster_at_start(SyncRedis({"p:roster:doc"}), SETTINGS, gauge) is True
    assert gauge.value == 1 and not _warnings(caplog)


def test_the_probe_asks_for_the_roster_document_and_logs_only_changes(caplog):
    caplog.set_level(logging.INFO)
    gauge = Gauge()
    watch = RosterWatch(SETTINGS, gauge)
    probe = watch.probe()
    queued = []
    probe.queue(SimpleNamespace(exists=queued.append))
    assert queued == ["p:roster:doc"]

    probe.seen(0)  # the first answer only sets the gauge (the start check said it already)
    assert gauge.value == 0 and not caplog.records
    probe.seen(1)
    assert gauge.value == 1 and "a sales roster is now loaded" in caplog.text
    probe.seen(1)
    caplog.clear()
    probe.seen(0)
    assert gauge.value == 0 and len(_warnings(caplog)) == 1
    probe.seen(0)
    assert len(_warnings(caplog)) == 1
