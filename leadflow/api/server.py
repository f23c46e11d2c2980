"""The lead API on every worker (Faust's web server, ``LEADFLOW_API_PORT``):

- ``GET /leads/{lead_id}``: the lead's view (:func:`leadflow.api.view.lead_view`);
- ``POST /leads/lookup`` with ``{"email": "..."}``: the same, by email. The email is hashed into
  the lead id here (``lead_id_for_email`` with LEADFLOW_LEAD_ID_KEY), so it never appears in a
  URL, a log line or a metric; the request goes on to the owning worker by lead id.

404 for a lead this pipeline does not know (never seen, or erased), 400 for a malformed id or
body, 401 without the bearer token (when one is set). Routing to the worker that owns the
lead's partition is :mod:`streams.web`'s.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from agents.domain.erasure import LEAD_ID_RE
from agents.domain.identity import InvalidEmail, lead_id_for_email, normalize_email
from agents.routing.redelivery import RoutingMemo
from agents.scoring.model import ScoringModel
from agents.scoring.state_codec import decode_state
from agents.sla.rules import LeadClock
from leadflow.api.view import lead_view
from streams.app import Pipeline
from streams.web import Answer, BadRequest, register_keyed_view

log = logging.getLogger(__name__)

# Tables read (each capability's own, all keyed by lead id and co-partitioned).
STATE_TABLE, ASSIGNMENT_TABLE, SLA_TABLE = "lead_to_state", "lead_to_assignment", "lead_to_sla_clock"
MAX_LOOKUP_BODY_BYTES = 4096
BAD_LEAD_ID = "a lead id is 'ld_' followed by 20 lower-case hex digits"
BAD_LOOKUP = 'the body must be JSON {"email": "<address>"} with a valid email address'


def lead_path(lead_id: str) -> str:
    return f"/leads/{lead_id}"


def register(pipeline: Pipeline, *, model: ScoringModel) -> None:
    """Serve the lead API on this worker (after every capability registered its tables)."""
    tables = pipeline.tables
    states = tables[STATE_TABLE]
    key = pipeline.settings.lead_id_key_bytes

    async def lead_id_in_path(request: Any, match_info: dict[str, Any]) -> str:
        lead_id = str(match_info.get("lead_id") or "")
        if not LEAD_ID_RE.match(lead_id):
            raise BadRequest(BAD_LEAD_ID)
        return lead_id

    async def lead_id_of_email(request: Any, match_info: dict[str, Any]) -> str:
        body = await request.read()
        if len(body) > MAX_LOOKUP_BODY_BYTES:
            raise BadRequest(f"the body is over {MAX_LOOKUP_BODY_BYTES} bytes")
        try:
            email = orjson.loads(body).get("email")
            return lead_id_for_email(normalize_email(email if isinstance(email, str) else ""), key)
        except (orjson.JSONDecodeError, AttributeError, InvalidEmail):
            raise BadRequest(BAD_LOOKUP) from None  # never echo the body: it holds an email

    def answer_for(lead_id: str) -> Answer:
        table_key = lead_id.encode()
        raw = states.get(table_key)
        if raw is None:
            return Answer(404, {"error": "unknown lead (never seen, or erased)"})
        memo_raw = tables[ASSIGNMENT_TABLE].get(table_key) if ASSIGNMENT_TABLE in tables else None
        clock_raw = tables[SLA_TABLE].get(table_key) if SLA_TABLE in tables else None
        view = lead_view(
            decode_state(raw),
            model,
            pipeline.now_ms(),
            memo=RoutingMemo.from_dict(orjson.loads(memo_raw)) if memo_raw else None,
            clock=LeadClock.from_dict(orjson.loads(clock_raw)) if clock_raw else None,
        )
        return Answer(200, view)

    # The lookup first: "/leads/lookup" also matches "/leads/{lead_id}".
    for route, endpoint, method, key_of in (
        ("/leads/lookup", "lookup", "POST", lead_id_of_email),
        ("/leads/{lead_id}", "lead", "GET", lead_id_in_path),
    ):
        register_keyed_view(
            pipeline,
            route,
            endpoint=endpoint,
            table=STATE_TABLE,
            method=method,
            key_of=key_of,
            canonical_path=lead_path,
            answer_for=answer_for,
        )
    log.info(
        "lead API on %s (bearer token %s)",
        pipeline.settings.api_canonical_url,
        "required" if pipeline.settings.api_token_value else "off: loopback only",
    )
