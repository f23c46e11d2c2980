"""Seeded generation of input events: visitors' journeys, interleaved in time.

Pure: no Kafka, no clocks, no global random state. The same seed and parameters always give
the same sequence of events, whatever the publishing rate.

    sim = TrafficSimulator(seed=7, start_ms=1_767_225_600_000)
    for event in sim.take(1000):          # SimEvent, in business-time order
        payload = event.encode(codec)     # framed Avro or JSON bytes, as a publisher sends them

The model. New visitors arrive as a Poisson process (``arrival_every_s`` on average, business
time). Each draws a persona (``personas.py``, weighted by ``mix``) and gets a journey:
sessions of page views (the first often anonymous: visitor id only), a form now and then
(which identifies the visitor, linking the anonymous pages), and after that email engagement
(opens, clicks, webinars, downloads, the odd unsubscribe). Event-app badge scans arrive
without a visitor. Journeys are merged by event time, so one stream interleaves many visitors.

``occurred_at`` is the business time of the event. A publisher that stamps events as they
are sent (live traffic) uses ``event.encode(codec, now_ms=...)``, which shifts the time by the
same amount for every event (deliberately out-of-range times stay out of range).

Deliberately bad events (``bad_share`` > 0) are *extra* events, never a replacement for a
journey's own: invalid emails, unknown kinds, timestamps years off, missing identity and
bytes that are neither Avro nor JSON. Each carries ``bad`` = the dead-letter reason code
leadflow should give it.

``inline_crm=True`` adds the CRM's side to the stream for high-intent leads (first touches,
working, dispositions - see ``crm.py``) as if they had been assigned right after their form;
use it where no routing runs (``leadflow simulate`` alone, ``leadflow bench``). The demo
instead reacts to real assignments (``crm.CrmSimulator.react``).
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

import orjson

from agents.capture.keys import input_key
from agents.domain.identity import lead_id_for_email
from leadflow.simulator.crm import DEFAULT_SLA_MS, CrmSimulator, queue_owner_for
from leadflow.simulator.personas import (
    CONTENT_TITLES,
    DEFAULT_MIX,
    PERSONAS_BY_NAME,
    WEBINAR_TITLES,
    Identity,
    Persona,
)

FORM_SUBMITTED, WEB_ACTIVITY, CRM_STATUS = "form_submitted", "web_activity", "crm_status"
SUBJECTS = (FORM_SUBMITTED, WEB_ACTIVITY, CRM_STATUS)
SECOND, MINUTE, HOUR, DAY = 1000, 60_000, 3_600_000, 86_400_000
SITE = "https://www.leadflow-demo.example"
PAGE_PATHS = {
    "pricing": "/pricing",
    "product": "/product/routing",
    "demo": "/demo",
    "roi_calculator": "/roi",
    "docs": "/docs/integrations",
    "blog": "/blog/speed-to-lead",
    "careers": "/careers",
    "other": "/about",
}
# Form kinds that come from web pages vs from other systems (no visitor cookie).
_OFFLINE_FORMS = frozenset({"event_badge_scan"})
# High-intent forms: with inline CRM these leads get a (simulated) assignment.
_HIGH_INTENT_FORMS = {
    "demo_request": "P1",
    "contact_sales": "P1",
    "chat": "P1",
    "pricing_form": "P1",
    "webinar_registration": "P2",
    "content_download": "P2",
    "event_badge_scan": "P2",
}
BAD_KINDS = ("invalid_email", "unknown_kind", "timestamp_out_of_range", "missing_field", "unknown_encoding")


@dataclass(frozen=True, slots=True)
class SimEvent:
    """One input event as a publisher would send it."""

    seq: int  # position in the stream (0, 1, 2, ...)
    at_ms: int  # business time of the event
    subject: str  # form_submitted | web_activity | crm_status (= the input topic)
    record: Mapping[str, Any] | None  # contract fields; None only for raw (undecodable) events
    encoding: str  # "avro" | "json" | "raw"
    key: bytes | None
    persona: str
    lead_id: str | None  # the lead it belongs to, known to the simulator even when anonymous
    bad: str | None = None  # expected dead-letter reason code of a deliberately bad event
    raw: bytes | None = None  # the bytes of a raw event
    iso_time: bool = False  # JSON only: occurred_at as ISO-8601 instead of epoch ms

    @property
    def event_id(self) -> str | None:
        return None if self.record is None else self.record.get("event_id")

    def restamped(self, now_ms: int) -> SimEvent:
        """The same event happening at ``now_ms`` (offsets of bad timestamps are kept)."""
        if self.record is None:
            return replace(self, at_ms=now_ms)
        offset = int(self.record["occurred_at"]) - self.at_ms
        return replace(self, at_ms=now_ms, record={**self.record, "occurred_at": now_ms + offset})

    def encode(self, codec: Any, *, now_ms: int | None = None) -> bytes:
        """Wire bytes: framed Avro (current schema) or a JSON object, as publishers send them.

        ``codec`` is a ``streams.codec.Codec``; ``now_ms`` restamps the event first.
        """
        event = self if now_ms is None else self.restamped(now_ms)
        if event.encoding == "raw":
            return event.raw or b""
        record = event.record
        assert record is not None
        if event.encoding == "avro":
            return codec.encode(event.subject, record)
        if event.iso_time:
            at = datetime.fromtimestamp(int(record["occurred_at"]) / 1000, tz=timezone.utc)
            record = {**record, "occurred_at": at.isoformat(timespec="milliseconds").replace("+00:00", "Z")}
        return orjson.dumps(record)


@dataclass(slots=True)
class _Step:
    at_ms: int
    subject: str
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class LeadInfo:
    """What the simulator knows about a lead it generated (for CRM reactions and the demo)."""

    persona: str
    identity: Identity


class TrafficSimulator:
    """An endless, reproducible stream of ``SimEvent`` (iterate, or ``take(n)``)."""

    def __init__(
        self,
        seed: int,
        *,
        start_ms: int,
        mix: Mapping[str, float] | None = None,
        arrival_every_s: float = 20.0,
        avro_share: float = 0.5,
        bad_share: float = 0.0,
        inline_crm: bool = False,
        crm: CrmSimulator | None = None,
        tag: str | None = None,
        lead_id_key: bytes | None = None,
    ) -> None:
        if not 0 <= avro_share <= 1 or not 0 <= bad_share < 1:
            raise ValueError("avro_share must be in [0, 1] and bad_share in [0, 1)")
        if arrival_every_s <= 0:
            raise ValueError("arrival_every_s must be > 0")
        mix = dict(mix or DEFAULT_MIX)
        unknown = set(mix) - set(PERSONAS_BY_NAME)
        if unknown:
            raise ValueError(f"unknown personas in mix: {', '.join(sorted(unknown))}")
        self.seed = seed
        self.start_ms = start_ms
        self.tag = tag or f"s{seed}"
        self.avro_share, self.bad_share = avro_share, bad_share
        self.inline_crm = inline_crm
        self.lead_id_key = lead_id_key  # LEADFLOW_LEAD_ID_KEY: CRM events must name the pipeline's ids
        self.crm = crm or CrmSimulator(seed)
        self._personas = [PERSONAS_BY_NAME[n] for n, w in mix.items() if w > 0]
        self._weights = [mix[p.name] for p in self._personas]
        self._arrival_ms = arrival_every_s * 1000
        self._rng = random.Random(seed)
        self.leads: dict[str, LeadInfo] = {}

    # -- public API ------------------------------------------------------------------------

    def persona_of(self, lead_id: str) -> str | None:
        info = self.leads.get(lead_id)
        return info.persona if info else None

    def take(self, n: int) -> list[SimEvent]:
        return list(itertools.islice(self, n))

    def __iter__(self) -> Iterator[SimEvent]:
        rng = self._rng
        heap: list[tuple[int, int, _Step, str, str]] = []  # (at, order, step, persona, lead id)
        order = itertools.count()  # ties in time keep generation order
        next_arrival = self.start_ms
        journey = 0
        seq = 0
        while True:
            while not heap or next_arrival <= heap[0][0]:
                persona = rng.choices(self._personas, self._weights)[0]
                steps, lead_id = self._journey(persona, journey, next_arrival, random.Random(rng.getrandbits(64)))
                for step in steps:
                    heapq.heappush(heap, (step.at_ms, next(order), step, persona.name, lead_id))
                journey += 1
                next_arrival += max(1, int(rng.expovariate(1.0) * self._arrival_ms))
            at_ms, _, step, persona_name, lead_id = heapq.heappop(heap)
            if self.bad_share and rng.random() < self.bad_share:
                yield self._bad_event(seq, at_ms, rng)
                seq += 1
            encoding = "avro" if rng.random() < self.avro_share else "json"
            if step.subject == CRM_STATUS:
                encoding = "json"  # CRMs post JSON webhooks
            yield SimEvent(
                seq=seq,
                at_ms=at_ms,
                subject=step.subject,
                record=step.record,
                encoding=encoding,
                # Keyed by lead (or visitor), as docs/contracts.md asks publishers: no extra hop.
                key=input_key(step.subject, step.record, lead_id_key=self.lead_id_key),
                persona=persona_name,
                lead_id=lead_id,
                iso_time=encoding == "json" and rng.random() < 0.25,
            )
            seq += 1

    # -- journeys --------------------------------------------------------------------------

    def _journey(self, persona: Persona, serial: int, start_ms: int, rng: random.Random) -> tuple[list[_Step], str]:
        ident = persona.draw_identity(rng, serial)
        lead_id = lead_id_for_email(ident.email, self.lead_id_key)
        self.leads[lead_id] = LeadInfo(persona.name, ident)
        visitor = f"vis-{rng.getrandbits(48):012x}"
        ids = (f"sim-{self.tag}-{serial}-{n}" for n in itertools.count())
        steps: list[_Step] = []
        t = start_ms
        # Some arrive already known (clicked through a tracked email link): pages carry the email.
        identified = rng.random() >= persona.anonymous_first
        for session in range(rng.randint(*persona.sessions)):
            if session:
                t += rng.randint(15 * MINUTE, 8 * HOUR)
            utm_source, utm_medium = rng.choice(persona.utm)
            campaign = f"{utm_medium or 'direct'}-q{1 + serial % 4}" if utm_source else None
            anonymous = not identified
            pages, kinds = rng.randint(*persona.pages_per_session), list(persona.page_weights)
            weights = list(persona.page_weights.values())
            for n_page, page in enumerate(rng.choices(kinds, weights, k=pages)):
                t += rng.randint(3 * SECOND, 90 * SECOND)
                email = None if anonymous or rng.random() < 0.5 else ident.email
                steps.append(
                    _Step(
                        t,
                        WEB_ACTIVITY,
                        {
                            "event_id": next(ids),
                            "occurred_at": t,
                            "visitor_id": visitor,
                            "email": email,
                            "activity_kind": "page_view",
                            "page_type": page,
                            "url": SITE + PAGE_PATHS[page],
                            "content_title": None,
                            # UTM parameters ride on the landing page's URL only.
                            "utm_source": utm_source if n_page == 0 else None,
                            "utm_medium": utm_medium if n_page == 0 else None,
                            "utm_campaign": campaign if n_page == 0 else None,
                        },
                    )
                )
            if rng.random() < persona.form_prob:
                t += rng.randint(15 * SECOND, 3 * MINUTE)
                steps.append(self._form(persona, ident, rng, t, next(ids), visitor, utm_source, utm_medium, campaign))
                kind = steps[-1].record["form_kind"]
                if not any(s.subject == FORM_SUBMITTED for s in steps[:-1]):  # first form
                    identified = True
                    if self.inline_crm and kind in _HIGH_INTENT_FORMS and persona.name != "bot":
                        steps.extend(self._inline_crm(persona, lead_id, kind, t, rng))
                    steps.extend(self._email_engagement(persona, ident, rng, t, ids))
        return steps, lead_id

    def _form(
        self,
        persona: Persona,
        ident: Identity,
        rng: random.Random,
        t: int,
        event_id: str,
        visitor: str,
        utm_source: str | None,
        utm_medium: str | None,
        campaign: str | None,
    ) -> _Step:
        kind = rng.choices(list(persona.form_weights), list(persona.form_weights.values()))[0]
        offline = kind in _OFFLINE_FORMS
        fast = rng.random() < persona.fast_fill_prob
        honeypot = "http://cheap-pills.example" if rng.random() < persona.honeypot_prob else None
        if (persona.honeypot_prob or persona.fast_fill_prob) and not fast and not honeypot:
            fast = True  # a bot always leaves at least one signal (the undetectable ones are just "leads")
        record = {
            "event_id": event_id,
            "occurred_at": t,
            "form_id": f"{kind.replace('_', '-')}-{'event-app' if offline else 'web'}",
            "form_kind": kind,
            "email": ident.email,
            "first_name": ident.first_name,
            "last_name": ident.last_name,
            "job_title": ident.job_title,
            "company": ident.company,
            "company_size": ident.company_size,
            "industry": ident.industry,
            "country": ident.country,
            "utm_source": None if offline else utm_source,
            "utm_medium": None if offline else utm_medium,
            "utm_campaign": None if offline else campaign,
            "hidden_lead_source": "event" if offline else rng.choice(persona.hidden_lead_source),
            "page_url": None if offline else f"{SITE}/forms/{kind}",
            "consent_email": rng.random() < 0.8,
            "consent_tracking": rng.random() < 0.7,
            "visitor_id": None if offline else visitor,
            "honeypot": honeypot,
            "seconds_to_fill": round(rng.uniform(0.3, 1.8), 2) if fast else round(rng.uniform(6, 120), 1),
        }
        return _Step(t, FORM_SUBMITTED, record)

    def _email_engagement(self, persona: Persona, ident: Identity, rng: random.Random, t: int, ids) -> list[_Step]:
        steps = []
        for kind, expected in persona.email_engagement.items():
            count = int(expected) + (rng.random() < expected - int(expected))
            for _ in range(count):
                at = t + rng.randint(10 * MINUTE, 2 * DAY)
                title = rng.choice(WEBINAR_TITLES if kind == "webinar_attended" else CONTENT_TITLES)
                steps.append(
                    _Step(
                        at,
                        WEB_ACTIVITY,
                        {
                            "event_id": next(ids),
                            "occurred_at": at,
                            "visitor_id": None,
                            "email": ident.email,
                            "activity_kind": kind,
                            "page_type": None,
                            "url": f"{SITE}/lp/{kind}" if kind != "email_open" else None,
                            "content_title": title
                            if kind in ("webinar_attended", "content_download", "email_click")
                            else None,
                            "utm_source": "newsletter",
                            "utm_medium": "email",
                            "utm_campaign": "nurture-monthly",
                        },
                    )
                )
        return steps

    def _inline_crm(self, persona: Persona, lead_id: str, form_kind: str, t: int, rng: random.Random) -> list[_Step]:
        priority = _HIGH_INTENT_FORMS[form_kind]
        owner = queue_owner_for(priority, rng)
        assigned_at = t + rng.randint(5 * SECOND, 90 * SECOND)
        assignment = {
            "event_id": f"inline-{lead_id}-{t}",
            "lead_id": lead_id,
            "owner_id": owner,
            "owner_role": "AE",
            "priority": priority,
            "assigned_at": assigned_at,
            "first_touch_due_at": assigned_at + DEFAULT_SLA_MS[priority],
        }
        return [_Step(a.at_ms, CRM_STATUS, a.record) for a in self.crm.react(assignment, persona=persona.name)]

    # -- deliberately bad input ------------------------------------------------------------

    def _bad_event(self, seq: int, at_ms: int, rng: random.Random) -> SimEvent:
        kind = rng.choice(BAD_KINDS)
        event_id = f"sim-{self.tag}-bad-{seq}"
        base_form = {
            "event_id": event_id,
            "occurred_at": at_ms,
            "form_id": "contact-web",
            "form_kind": "contact_sales",
            "email": f"broken{seq}@example.com",
            "first_name": None,
            "last_name": None,
            "job_title": None,
            "company": None,
            "company_size": None,
            "industry": None,
            "country": None,
            "utm_source": None,
            "utm_medium": None,
            "utm_campaign": None,
            "hidden_lead_source": None,
            "page_url": None,
            "consent_email": False,
            "consent_tracking": False,
            "visitor_id": None,
            "honeypot": None,
            "seconds_to_fill": None,
        }
        common: dict[str, Any] = dict(seq=seq, at_ms=at_ms, persona="bad_input", lead_id=None, bad=kind, key=None)
        if kind == "unknown_encoding":
            return SimEvent(
                subject=FORM_SUBMITTED, record=None, encoding="raw", raw=b"<form><email>x</email></form>", **common
            )
        if kind == "missing_field":
            record = {
                "event_id": event_id,
                "occurred_at": at_ms,
                "visitor_id": None,
                "email": None,
                "activity_kind": "page_view",
                "page_type": "pricing",
                "url": None,
                "content_title": None,
                "utm_source": None,
                "utm_medium": None,
                "utm_campaign": None,
            }
            return SimEvent(subject=WEB_ACTIVITY, record=record, encoding="json", **common)
        if kind == "invalid_email":
            record = {**base_form, "email": f"broken{seq}-at-example.com"}
        elif kind == "unknown_kind":
            record = {**base_form, "form_kind": "carrier_pigeon"}
        else:  # timestamp_out_of_range: ten years ago
            record = {**base_form, "occurred_at": at_ms - 3650 * DAY}
        return SimEvent(subject=FORM_SUBMITTED, record=record, encoding="json", **common)
