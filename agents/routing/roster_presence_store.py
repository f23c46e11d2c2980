"""Routing's part of a worker's health: is a sales roster loaded in Redis?

Without one every MQL goes to the fallback owner, so the worker says it once, loudly, at start
(:func:`check_roster_at_start`), keeps ``leadflow_roster_loaded`` current, and logs when the
roster appears or disappears (:class:`RosterWatch`, whose :meth:`~RosterWatch.probe` the
composition root hands to ``streams.health.HealthService``: one EXISTS in the same round trip as
the health PING).
"""

from __future__ import annotations

import logging
from typing import Any

from agents.routing.roster_store import roster_keys
from streams.connections import redact_url
from streams.health import RedisProbe

log = logging.getLogger(__name__)


def no_roster_message(settings: Any) -> str:
    return (
        f"no sales roster in Redis at {redact_url(settings.redis_url)} (prefix "
        f"{settings.redis_key_prefix!r}): every MQL goes to the fallback owner. Load one with "
        f"`leadflow roster load --if-empty` (file: LEADFLOW_ROSTER_PATH={settings.roster_path})."
    )


def check_roster_at_start(client: Any, settings: Any, gauge: Any) -> bool:
    """One loud WARNING (and ``gauge``, ``leadflow_roster_loaded``, at 0) if Redis holds no
    roster. ``client``: a synchronous Redis client."""
    loaded = bool(client.exists(roster_keys(settings.redis_key_prefix)[1]))
    gauge.set(1 if loaded else 0)
    if not loaded:
        log.warning(no_roster_message(settings))
    return loaded


class RosterWatch:
    """Keeps ``gauge`` (``leadflow_roster_loaded``) at 1 while Redis holds a roster, with one log
    line each time the roster appears or disappears after the first answer."""

    def __init__(self, settings: Any, gauge: Any) -> None:
        self.settings, self.gauge = settings, gauge
        self.doc_key = roster_keys(settings.redis_key_prefix)[1]
        self.loaded: bool | None = None

    def probe(self) -> RedisProbe:
        return RedisProbe(queue=lambda pipe: pipe.exists(self.doc_key), seen=lambda exists: self.note(bool(exists)))

    def note(self, loaded: bool) -> None:
        """Gauge, plus one log line when the roster appears or disappears."""
        self.gauge.set(1 if loaded else 0)
        if self.loaded is not None and loaded != self.loaded:
            if loaded:
                log.info("a sales roster is now loaded in Redis; routing uses it from the next MQL")
            else:
                log.warning(no_roster_message(self.settings))
        self.loaded = loaded
