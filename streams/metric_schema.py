"""The fixed schema of a worker's metrics (:mod:`streams.metrics`): the namespace, the closed
label sets the runtime itself defines, the histograms' bucket edges, and the label names no
metric may carry.

The application's own vocabularies (event kinds, stages, statuses, dispositions, reason codes)
are not here: they arrive as a :class:`streams.metric_labels.Vocabulary`.
"""

from __future__ import annotations

NAMESPACE = "leadflow"

# --- Vocabularies the runtime itself defines (closed label sets) ------------------------------
ENCODINGS = ("avro", "json")
PRIORITIES = ("P1", "P2", "P3")
BOOLEANS = ("true", "false")
# The CRM status whose leadflow_dispositions_total series carry a rejection reason.
REJECTED = "rejected"
# Where duplicates are skipped (label ``stage``): scoring's dedup window, and routing's
# redelivery checks (agents/routing/redelivery.py: duplicate -> "route", stale, same_mql).
DUPLICATE_STAGES = ("score", "route", "route_stale", "route_same_mql", "reassign_duplicate", "reassign_stale")

# leadflow_mqls_routed_in_process_total{outcome}: routed in the scoring agent that emitted the
# MQL, or left to the routing agent's read of out.mqls (Redis slow or away, the lead busy, an error).
IN_PROCESS_ROUTING_OUTCOMES = ("routed", "deferred")

# The lead API (streams.web): which endpoint, the HTTP status sent, and whether this worker
# owned the lead or forwarded the request to the worker that does.
API_ENDPOINTS = ("lead", "lookup")
API_STATUSES = ("200", "400", "401", "404", "405", "502", "503")
API_SERVED = ("local", "forwarded")
# leadflow_shadow_decisions_total{direction}: agents.scoring.shadow.DIRECTIONS (a test holds them equal).
SHADOW_DIRECTIONS = ("gained", "lost")

# --- Histogram buckets (seconds) ------------------------------------------------------------
# A lead API request, received -> answered (forwarded ones include the hop to the owner).
API_REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Input event (broker timestamp) -> score emitted: 5 ms .. 60 s.
EVENT_TO_SCORE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Input event -> assignment emitted; the business target is "assigned within 2 minutes".
EVENT_TO_ASSIGNMENT_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)
_MINUTE, _HOUR, _DAY = 60.0, 3600.0, 86400.0
# Assignment -> first touch, up to 7 days. Edges include the default SLAs (10 min P1, 48 h P2,
# 5 days P3) and the business targets (1 h hot, 24 h MQL), so the dashboards' "within X" ratios
# read exact bucket counts.
SPEED_TO_LEAD_BUCKETS = (
    30.0,
    _MINUTE,
    2 * _MINUTE,
    5 * _MINUTE,
    10 * _MINUTE,
    15 * _MINUTE,
    30 * _MINUTE,
    _HOUR,
    2 * _HOUR,
    4 * _HOUR,
    8 * _HOUR,
    24 * _HOUR,
    48 * _HOUR,
    72 * _HOUR,
    5 * _DAY,
    7 * _DAY,
)

# Label names that must never appear on any metric (personal data / unbounded ids).
FORBIDDEN_LABELS = frozenset(
    {
        "email",
        "lead_id",
        "event_id",
        "visitor_id",
        "rep_id",
        "owner_id",
        "account_id",
        "account_domain",
        "company",
        "name",
        "reason_text",
        "detail",
        "url",
    }
)
