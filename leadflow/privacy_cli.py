"""`leadflow forget EMAIL|LEAD_ID`: erasure on request (docs/privacy.md).

The tables live in the workers, so the command only publishes the request: a CRM status
``erasure_requested`` for the lead id on ``<p>.in.crm-status``. The email never goes to Kafka
(it is turned into the lead id here, with LEADFLOW_LEAD_ID_KEY when set) and is never printed.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import click
import orjson

from leadflow.cli_context import kafka_settings_from as _kafka_settings
from leadflow.cli_context import settings_from as _settings
from streams.connections import kafka_client_kwargs


@click.command(short_help="Erase a lead everywhere (GDPR Art. 17 / CCPA deletion).")
@click.argument("target", metavar="EMAIL|LEAD_ID")
@click.option("--requested-by", help="Who asked (a ticket or operator id), kept in the request's rep_id.")
@click.pass_context
def forget(ctx: click.Context, target: str, requested_by: str | None) -> None:
    """Erase the lead of EMAIL (or LEAD_ID): its state, SLA clock, account facts, visitor
    buffers and routing keys are deleted by the workers (changelog tombstones), and
    `<p>.out.erasures` announces it for downstream tools. What happens to later events for
    the same email is LEADFLOW_ERASURE_MODE (new_lead | suppress)."""
    from agents.domain.erasure import ForgetTargetError, erasure_request, lead_id_of_target
    from streams.topics import TopicNames

    settings = _settings(ctx)
    try:
        lead_id = lead_id_of_target(target, settings.lead_id_key_bytes)
    except ForgetTargetError as exc:
        raise click.BadParameter(str(exc), param_hint="EMAIL|LEAD_ID") from None
    _kafka_settings(ctx)
    topic = TopicNames.from_settings(settings).crm_status
    request = erasure_request(
        lead_id,
        requested_at_ms=int(time.time() * 1000),
        event_id="erasure-" + uuid.uuid4().hex,
        requested_by=requested_by,
    )
    asyncio.run(_send(kafka_client_kwargs(settings), topic, lead_id, orjson.dumps(request)))
    click.echo(
        f"erasure of lead {lead_id} requested (event {request['event_id']} on {topic}); "
        f"`leadflow tail erasures` shows the lead_erased record when the workers are done"
    )


async def _send(kafka: dict, topic: str, lead_id: str, value: bytes) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(**kafka, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=lead_id.encode())
    finally:
        await producer.stop()
