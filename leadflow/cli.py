"""`leadflow` command line (click: already a Faust dependency, well kept, composable groups)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

from leadflow.bench_cli import bench
from leadflow.calibrate_cli import calibrate
from leadflow.cli_context import LeadflowGroup
from leadflow.cli_context import kafka_settings_from as _kafka_settings
from leadflow.cli_context import settings_from as _settings
from leadflow.demo_cli import demo
from leadflow.explain_cli import explain
from leadflow.inputs_cli import INPUT_KINDS, replay, simulate
from leadflow.privacy_cli import forget
from leadflow.roster_cli import roster
from leadflow.shadow_cli import shadow
from leadflow.whatif_cli import whatif
from streams.connections import kafka_client_kwargs


# The commands of other modules are listed here; this module's own are added by @main.command().
@click.group(
    cls=LeadflowGroup, commands=[bench, calibrate, demo, explain, forget, replay, roster, shadow, simulate, whatif]
)
@click.version_option(package_name="leadflow", prog_name="leadflow", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """leadflow: real-time lead scoring, routing and speed-to-lead SLAs on Kafka."""
    from streams.logs import configure_logging
    from streams.settings import SettingsError, load_settings, unknown_variables

    try:
        ctx.obj = load_settings()
    except SettingsError:
        ctx.obj = None  # the command that needs settings reports it (cli_context.settings_from)
    # LEADFLOW_LOG_FORMAT (text | json), for every command and the worker (streams.logs).
    configure_logging(ctx.obj.log_format if ctx.obj else "text", logging.DEBUG if verbose else logging.INFO)
    for warning in unknown_variables(os.environ):  # a misspelt setting is otherwise ignored silently
        logging.getLogger("leadflow").warning("%s", warning)


# --- dev stack ---------------------------------------------------------------------------


@main.group()
def dev() -> None:
    """Local Apache Kafka (KRaft) + Redis as plain processes, no Docker."""


@dev.command("up")
@click.option(
    "--secure",
    is_flag=True,
    help="Also open a SASL_SSL listener (SCRAM-SHA-512, a local CA) on Kafka port + 2, "
    "to try production settings locally; prints the LEADFLOW_* variables to use it.",
)
@click.pass_context
def dev_up(ctx: click.Context, secure: bool) -> None:
    """Fetch Kafka jars (first time), start Kafka and Redis, wait until both answer."""
    from leadflow.devstack import DevStack
    from leadflow.devstack.stack import sasl_ssl_client_overrides

    settings = _settings(ctx)
    stack = DevStack.from_settings(settings, secure=secure)
    report = stack.up()
    click.echo(report.summary())
    if secure and stack.kafka.sasl_ssl is not None:  # secure=True configures the listener
        overrides = sasl_ssl_client_overrides(stack.kafka.sasl_ssl, Path(settings.stack_dir) / "pki")
        click.echo(
            "SASL_SSL listener ready; to use it:\n"
            + "\n".join(f"  export LEADFLOW_{key.upper()}={value}" for key, value in overrides.items())
        )
    from leadflow.worker import prepare

    prepare(settings)
    click.echo(f"topics ready (prefix {settings.topic_prefix!r}, {settings.topic_partitions} partitions)")


@dev.command("down")
@click.pass_context
def dev_down(ctx: click.Context) -> None:
    """Stop Kafka and Redis started by `dev up`."""
    from leadflow.devstack import DevStack

    DevStack.from_settings(_settings(ctx)).down()
    click.echo("stack stopped")


@dev.command("status")
@click.pass_context
def dev_status(ctx: click.Context) -> None:
    """Show whether Kafka and Redis are running."""
    from leadflow.devstack import DevStack

    click.echo(json.dumps(DevStack.from_settings(_settings(ctx)).status(), indent=2, default=str))


# --- worker ------------------------------------------------------------------------------


@main.command()
@click.option("--loglevel", default="info", type=click.Choice(["crit", "error", "warn", "info", "debug"]))
@click.pass_context
def worker(ctx: click.Context, loglevel: str) -> None:
    """Run a leadflow worker (Faust) against the configured Kafka and Redis."""
    from leadflow.worker import run_worker

    # Kafka or Redis unreachable, a registry that does not answer, a failed start-up check: one
    # line each (LeadflowGroup, leadflow.cli_context.known_failure_line).
    sys.exit(run_worker(_settings(ctx), loglevel=loglevel))


@main.command()
@click.option("--keep-stack", is_flag=True, help="Leave Kafka and Redis running on exit.")
@click.pass_context
def run(ctx: click.Context, keep_stack: bool) -> None:
    """Local pipeline: start the stack, then a worker in the foreground; Ctrl-C stops both."""
    from leadflow.devstack import DevStack

    settings = _settings(ctx)
    # Ctrl-C and a supervisor's SIGTERM both end in the cleanup below. Set explicitly: a shell
    # starts background jobs with SIGINT ignored, and Python would inherit that.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    stack = DevStack.from_settings(settings)
    click.echo(stack.up().summary())
    try:  # real routing: the configured roster, unless Redis already holds one
        from leadflow.roster_cli import load_roster

        click.echo(load_roster(settings, if_empty=True))
    except click.ClickException:
        if not keep_stack:
            stack.down()
        raise
    child = subprocess.Popen([sys.executable, "-m", "leadflow.cli", "worker"])
    try:
        host = "127.0.0.1" if settings.metrics_host in ("0.0.0.0", "::") else settings.metrics_host
        click.echo(
            f"worker pid {child.pid}; metrics http://{host}:{settings.metrics_port}/metrics (health: /livez, "
            f"/readyz); publish with `leadflow publish form events.jsonl`; "
            + (f"`leadflow explain EMAIL` asks the lead API at {settings.api_url}. " if settings.api_port else "")
            + "Ctrl-C to stop."
        )
        child.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if not keep_stack:
            stack.down()
            click.echo("stack stopped")


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


# --- topics, publish, tail ---------------------------------------------------------------


@main.group()
def topics() -> None:
    """Topic administration."""


@topics.command("create")
@click.pass_context
def topics_create(ctx: click.Context) -> None:
    """Create every leadflow topic that is missing (idempotent)."""
    from streams.topics import TopicError, ensure_topics

    settings = _kafka_settings(ctx)
    try:
        created = asyncio.run(ensure_topics(settings))
    except TopicError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created {len(created)} topics" + (": " + ", ".join(created) if created else ""))


@topics.command("list")
@click.pass_context
def topics_list(ctx: click.Context) -> None:
    """Print leadflow's topic names."""
    from dataclasses import asdict

    from streams.topics import TopicNames

    for role, name in asdict(TopicNames.from_settings(_settings(ctx))).items():
        click.echo(f"{role:16} {name}")


@main.command()
@click.argument("kind", type=click.Choice(sorted(INPUT_KINDS)))
@click.argument("source", type=click.File("rb"), default="-")
@click.option(
    "--now",
    "restamp",
    is_flag=True,
    help="Shift occurred_at so the last line happens now, keeping the spacing between "
    "lines (for example files; events older than LEADFLOW_MAX_EVENT_AGE_DAYS or "
    "in the future are dead-lettered).",
)
@click.option(
    "--backfill",
    is_flag=True,
    help="History (header leadflow-backfill: 1): rebuilds lead state, sends no MQL "
    "(CRM imports, offline event-scan uploads).",
)
@click.pass_context
def publish(ctx: click.Context, kind: str, source, restamp: bool, backfill: bool) -> None:
    """Publish JSON lines (one event per line) from SOURCE (a file or - for stdin) to the
    KIND input topic (form, web or crm)."""
    from streams.topics import TopicNames

    settings = _settings(ctx)
    topic = getattr(TopicNames.from_settings(settings), INPUT_KINDS[kind])
    lines = [line.strip() for line in source if line.strip()]
    if restamp:
        lines = _restamp(lines)
    _kafka_settings(ctx)
    count = asyncio.run(_publish(kafka_client_kwargs(settings), topic, lines, backfill=backfill))
    click.echo(f"published {count} events to {topic}")


def _restamp(lines: list[bytes]) -> list[bytes]:
    import orjson

    from streams.codec.json import iso_to_epoch_ms  # same parsing rules as the pipeline

    def to_epoch_ms(value) -> int:
        return int(value) if isinstance(value, (int, float)) else iso_to_epoch_ms(value)

    try:
        records = [orjson.loads(line) for line in lines]
        times = [to_epoch_ms(r["occurred_at"]) for r in records]
    except Exception as exc:
        raise click.ClickException(f"--now needs JSON objects with occurred_at on every line: {exc}") from None
    shift = int(time.time() * 1000) - max(times)
    return [orjson.dumps({**r, "occurred_at": t + shift}) for r, t in zip(records, times)]


async def _publish(kafka: dict, topic: str, lines: list[bytes], *, backfill: bool = False) -> int:
    from aiokafka import AIOKafkaProducer

    from agents.domain.events import BACKFILL_HEADER

    headers = [(BACKFILL_HEADER, b"1")] if backfill else None
    producer = AIOKafkaProducer(**kafka, acks="all")
    await producer.start()
    try:
        for line in lines:
            await producer.send(topic, value=line, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()
    return len(lines)


@main.command()
@click.argument("topic_role")
@click.option("--from-beginning", is_flag=True)
@click.option("--max", "max_messages", type=int, default=0, help="Stop after N messages (0 = follow).")
@click.option("--timeout", type=float, default=0.0, help="Stop after S seconds without a message.")
@click.pass_context
def tail(ctx: click.Context, topic_role: str, from_beginning: bool, max_messages: int, timeout: float) -> None:
    """Pretty-print an output topic, decoding Avro. TOPIC_ROLE is a name from `topics list`
    (e.g. mqls, lead_scored, dead_letters) or a full topic name."""
    from streams.app import build_codec
    from streams.topics import TopicNames

    settings = _settings(ctx)
    topic = tail_topic(TopicNames.from_settings(settings), topic_role)
    codec = build_codec(settings, register=False)  # a registry's ids are fetched as they appear
    # aiokafka logs "Topic ... not found in cluster metadata" at ERROR ten times a second while
    # it waits for a missing topic; _tail reports that case in one line instead.
    logging.getLogger("aiokafka.cluster").setLevel(logging.CRITICAL)
    _kafka_settings(ctx)
    asyncio.run(
        _tail(
            kafka_client_kwargs(settings),
            topic,
            codec,
            from_beginning,
            max_messages,
            timeout,
            TopicNames.from_settings(settings).output_subject(topic),
        )
    )


def tail_topic(names, role: str) -> str:
    """The topic for a role from `topics list` (``mqls``, ``lead-scored`` too), or a full topic
    name (one of leadflow's, or any name with a dot); a bare unknown word is an error that
    lists the roles (it is almost always a typo, and tailing a missing topic waits forever)."""
    from dataclasses import fields

    roles = [f.name for f in fields(names)]
    key = role.strip().replace("-", "_")
    if key in roles:
        return getattr(names, key)
    if role in names.all() or "." in role:
        return role
    raise click.BadParameter(
        f"unknown role {role!r}; roles: {', '.join(roles)} (or a full topic name, e.g. {names.mqls})",
        param_hint="TOPIC_ROLE",
    )


async def _tail(kafka, topic, codec, from_beginning, max_messages, timeout, subject_hint=None) -> None:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import UnknownTopicOrPartitionError

    consumer = AIOKafkaConsumer(
        topic,
        **kafka,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        group_id=None,
    )
    seen, last = 0, time.monotonic()
    try:
        try:
            # A missing topic makes start() wait for its metadata for the request timeout (40 s),
            # retrying every 100 ms; --timeout bounds that wait as well.
            await asyncio.wait_for(consumer.start(), timeout or None)
        except (asyncio.TimeoutError, UnknownTopicOrPartitionError):
            raise click.ClickException(
                f"topic {topic!r} has no metadata on Kafka (does it exist? `leadflow topics list` names "
                "leadflow's topics, `leadflow topics create` creates them)"
            ) from None
        while not max_messages or seen < max_messages:
            batch = await consumer.getmany(timeout_ms=500)
            if not batch:
                if timeout and time.monotonic() - last > timeout:
                    return
                continue
            last = time.monotonic()
            for records in batch.values():
                for record in records:
                    try:
                        subject, value = codec.decode(record.value, subject_hint)
                    except Exception as exc:  # not Avro (e.g. an input topic): show it raw
                        subject, value = f"undecodable: {exc}", record.value.decode("utf-8", "replace")
                    click.echo(
                        json.dumps(
                            {"subject": subject, "key": (record.key or b"").decode(), "value": value},
                            default=_json_default,
                        )
                    )
                    seen += 1
    finally:
        await consumer.stop()


def _json_default(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Path):
        return str(value)
    return str(value)


if __name__ == "__main__":
    main()
