"""What the commands that drive Kafka themselves (``leadflow demo | simulate | replay | bench``)
share in how they talk to the user: known failures as one readable line, the clients' log noise
silenced, progress bars, and a bad ``--mix`` as a usage error."""

from __future__ import annotations

import functools
import logging

import click

from streams.settings import SettingsError


def friendly_errors(fn):
    """Known failures become one readable line (what failed, what to try), not a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from aiokafka.errors import KafkaConnectionError, KafkaError

        from leadflow.devstack import DevStackError
        from leadflow.simulator.harness import HarnessError

        try:
            return fn(*args, **kwargs)
        except (HarnessError, DevStackError, SettingsError) as exc:
            raise click.ClickException(str(exc)) from None
        except KafkaConnectionError as exc:
            settings = click.get_current_context().obj
            where = settings.kafka_bootstrap if settings is not None else "the configured broker"
            raise click.ClickException(
                f"cannot reach Kafka at {where} ({exc}). Start the local stack with `leadflow dev up` "
                "or set LEADFLOW_KAFKA_BOOTSTRAP."
            ) from None
        except KafkaError as exc:
            raise click.ClickException(f"Kafka error: {exc!r}") from None

    return wrapper


def quiet_clients() -> None:
    # aiokafka logs retries of fresh topics' leader elections as warnings: noise here; the
    # commands print their own progress, so the stack's INFO lines would only repeat it.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    for name in ("streams.topics", "leadflow.devstack"):
        logging.getLogger(name).setLevel(logging.WARNING)


def persona_mix(value: str | None) -> dict[str, float] | None:
    from leadflow.simulator.personas import parse_mix

    try:
        return parse_mix(value) if value else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def progress_display(console=None):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
