#!/usr/bin/env python3
"""Micro-benchmark of the pure scoring rules on a synthetic stream.

Per event it does what the Faust wiring does with the ``lead_to_state`` table: load the
lead's state from its stored bytes (``state_codec``), ``apply_event``, encode the new state back to
bytes and compute ``next_review_at_ms`` for the due-time index. Prints events/s for that
loop (the headline figure) and for the rules alone.

    .venv/bin/python scripts/bench_scoring.py [--events 100000] [--leads 5000] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.domain.events import LeadEvent  # noqa: E402
from agents.domain.identity import lead_id_for_email  # noqa: E402
from agents.routing.config import load_routing_config  # noqa: E402
from agents.routing.priority import priority_policy  # noqa: E402
from agents.scoring import LeadState, apply_event, load_model, next_review_at_ms  # noqa: E402
from agents.scoring.state_codec import decode_state, encode_state  # noqa: E402

DAY = 86_400_000
START = 1_735_689_600_000
TITLES = ["VP Sales", "Director of Marketing", "Engineer", "Marketing Manager", "CEO", None]
INDUSTRIES = ["Software", "Retail", "Financial Services", "Manufacturing", None]
DOMAINS = ["acme.com", "globex.io", "initech.com", "gmail.com", "umbrella.co"]
PAGES = ["pricing", "product", "docs", "blog", "demo", "roi_calculator", "careers", "other"]


def synthetic_events(n_events: int, n_leads: int, seed: int) -> list[LeadEvent]:
    rng = random.Random(seed)
    emails = [f"user{i}@{rng.choice(DOMAINS)}" for i in range(n_leads)]
    events = []
    clock = START
    for i in range(n_events):
        clock += rng.randint(0, 60_000)
        at = clock - (rng.randint(0, 7 * DAY) if rng.random() < 0.05 else 0)  # 5% late events
        email = rng.choice(emails)
        roll = rng.random()
        utm = {
            "utm_source": rng.choice([None, "google", "linkedin", "newsletter"]),
            "utm_medium": rng.choice([None, "cpc", "email"]),
            "utm_campaign": None,
        }
        if roll < 0.10:
            kind = "form_submitted"
            data = {
                "form_id": "f1",
                "form_kind": rng.choice(["demo_request", "newsletter", "content_download", "contact_sales"]),
                "email": email,
                "first_name": "Sam",
                "last_name": None,
                "job_title": rng.choice(TITLES),
                "company": "Co",
                "company_size": rng.choice([10, 150, 2000, None]),
                "industry": rng.choice(INDUSTRIES),
                "country": rng.choice(["US", "DE", "BR"]),
                "hidden_lead_source": rng.choice([None, "web", "partner"]),
                "page_url": None,
                "consent_email": True,
                "consent_tracking": True,
                "honeypot_filled": False,
                "seconds_to_fill": 20.0,
                "visitor_id": None,
                **utm,
            }
        elif roll < 0.96:
            kind = "web_activity"
            activity_kind = rng.choices(
                ["page_view", "email_open", "email_click", "content_download", "unsubscribe"], weights=[60, 20, 9, 8, 3]
            )[0]
            data = {
                "activity_kind": activity_kind,
                "page_type": rng.choice(PAGES) if activity_kind == "page_view" else None,
                "url": "https://example.com/p?x=1",
                "content_title": "Guide" if activity_kind == "content_download" else None,
                "email": email,
                **utm,
            }
        else:
            kind = "crm_status"
            data = {
                "rep_id": "r1",
                "status": rng.choice(["first_touch", "working", "meeting_booked"]),
                "touch_channel": "call",
                "disposition": None,
                "account_id": None,
                "account_domain": None,
            }
        events.append(LeadEvent(f"ev-{i}", kind, lead_id_for_email(email), None, at, at, "json", data))
    return events


def run_with_table(events: list[LeadEvent], model, priority) -> tuple[float, int, int]:
    table: dict[str, bytes] = {}
    mqls = 0
    started = time.perf_counter()
    for event in events:
        raw = table.get(event.lead_id)
        state = decode_state(raw) if raw else None
        new_state, outputs = apply_event(state, event, model, now_ms=event.occurred_at_ms, priority=priority)
        table[event.lead_id] = encode_state(new_state)
        next_review_at_ms(new_state, model)
        mqls += sum(1 for o in outputs if o.subject == "lead_qualified")
    elapsed = time.perf_counter() - started
    mean_state_bytes = sum(map(len, table.values())) // max(1, len(table))
    return elapsed, mqls, mean_state_bytes


def run_rules_only(events: list[LeadEvent], model, priority) -> float:
    states: dict[str, LeadState] = {}
    started = time.perf_counter()
    for event in events:
        states[event.lead_id], _ = apply_event(
            states.get(event.lead_id), event, model, now_ms=event.occurred_at_ms, priority=priority
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--leads", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    model = load_model(REPO / "config" / "scoring-model.yaml")
    priority = priority_policy(load_routing_config(REPO / "config" / "routing.yaml"))  # as the worker does
    events = synthetic_events(args.events, args.leads, args.seed)
    run_rules_only(events[:2000], model, priority)  # warm caches (title memo, cached properties)

    elapsed, mqls, state_bytes = run_with_table(events, model, priority)
    rules_elapsed = run_rules_only(events, model, priority)
    print(f"synthetic stream: {len(events):,} events, {args.leads:,} leads, model {model.version}")
    print(
        f"apply_event + state codec round trip + next_review_at_ms: {len(events) / elapsed:,.0f} events/s "
        f"({elapsed * 1e6 / len(events):.1f} us/event)"
    )
    print(f"apply_event alone (state kept in memory):                 {len(events) / rules_elapsed:,.0f} events/s")
    print(f"MQLs emitted: {mqls:,}; mean serialized state: {state_bytes:,} bytes")


if __name__ == "__main__":
    main()
