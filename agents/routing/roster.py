"""The roster: who can take leads, where, and how many. Pure model + validation (no Redis).

A roster file (``config/roster.yaml``, loaded into Redis by ``leadflow roster load FILE``)::

    label: "2025-06 default"            # free text shown by `leadflow roster show`
    territories:
      - {id: na, name: North America, countries: [US, CA]}
    reps:
      - id: ae-ana                      # unique, stable (used in open-lead counters)
        name: Ana Ortiz
        role: AE                        # the roles routing.yaml routes to (AE, SDR), or any other
        team: na-sales
        manager: mgr-mia                # another rep's id
        active: true                    # false = never routed to
        departed_at: null               # from this instant on the rep has left (never routed to)
        out_of_office: [{from: 2025-12-22T00:00:00Z, until: 2026-01-05T00:00:00Z}]
        capacity: 40                    # max open leads; must be > 0 (omit only for queues)
        territories: [na]               # used by rules that do not list members
        segments: [enterprise]          # (empty = all segments)
        round_robin: true               # part of the round-robin pool for its role
    rules:                              # territory / attribute rules, first match wins
      - name: na-ae                   # match on the lead's attributes, not its lead type
        match: {territories: [na], roles: [AE]}
        members: []                     # empty = reps of the lead's role serving its territory/segment
        default_owner: mgr-mia          # must exist and be active
    account_owners:                     # email/account domain -> rep id
      acme-logistics.com: ae-ana

Times are ISO-8601 (a zone is recommended; naive times and plain dates are UTC); an
out-of-office window is ``[from, until)``. Everything is validated at once and each problem
names its entry, e.g. ``reps[3] (id 'ae-ana'): duplicate id (first at reps[0])``,
``rules[1] (name 'emea').match.territories: unknown territory 'apac'``,
``rules[0] (name 'na-enterprise').default_owner: 'ae-old' is inactive``,
``reps[2] (id 'sdr-sam').capacity: must be greater than 0 (max open leads), got 0``.
With a routing config, the roster is also checked against it (segments, lead types, the
nurture owner must exist and be active, roles that have nobody are warned about).

Soft issues (an account owner who is inactive, a default owner out of office today) are
``Roster.warnings``: routing copes with them (skips, with an audit line), RevOps should fix them.

The runtime form (``Roster``, in ``roster_model.py``) is plain frozen dataclasses with times as
epoch ms; it round-trips through ``to_dict``/``from_dict`` (the JSON document stored in Redis).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# The runtime form lives below this module and roster_validation, which both build it; re-exported here.
from agents.routing.roster_model import (  # noqa: F401
    MATCH_LIST_FIELDS,
    ROSTER_FORMAT,
    Rep,
    Roster,
    Rule,
    Territory,
    iso,
    to_epoch_ms,
)
from agents.routing.roster_validation import validate_roster

if TYPE_CHECKING:
    from agents.routing.config import RoutingConfig


def parse_roster(
    raw: object,
    *,
    config: RoutingConfig | None = None,
    now_ms: int | None = None,
    source: str = "roster",
) -> Roster:
    """Validate a roster mapping (what the YAML holds); raises RosterError listing every problem.

    ``config`` adds the checks against the routing configuration; ``now_ms`` (the load time)
    adds the "departed already" and "out of office right now" checks. See
    ``agents.routing.roster_validation``.
    """
    return validate_roster(raw, config=config, now_ms=now_ms, source=source)
