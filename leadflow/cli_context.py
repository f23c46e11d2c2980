"""Settings for CLI commands: built once per invocation, bad values as a one-line click error.

Shared by the main group (``leadflow.cli``) and the command modules it lists (``bench_cli``,
``demo_cli``, ``inputs_cli``, ``privacy_cli``, ``roster_cli``), which never import ``leadflow.cli`` back."""

from __future__ import annotations

import asyncio
import logging

import click

from streams.connections import KafkaUnavailable, RedisUnavailable, check_kafka
from streams.settings import Settings, SettingsError, load_settings


def settings_from(ctx: click.Context) -> Settings:
    if ctx.obj is None:
        try:
            ctx.obj = load_settings()
        except SettingsError as exc:
            raise click.ClickException(str(exc)) from None
    return ctx.obj


def kafka_settings_from(ctx: click.Context) -> Settings:
    """Settings, after one connection proved Kafka usable; otherwise a one-line error."""
    settings = settings_from(ctx)
    try:
        asyncio.run(check_kafka(settings))
    except KafkaUnavailable as exc:
        raise click.ClickException(
            f"{exc}. Start the local stack with `leadflow dev up` or check LEADFLOW_KAFKA_BOOTSTRAP "
            "and the LEADFLOW_KAFKA_SECURITY_* settings."
        ) from None
    return settings


# --- configuration files: one line, naming the file and the setting ------------------------------


def _config_errors() -> dict[type[Exception], str]:
    from agents.routing.exceptions import RosterError, RoutingConfigError
    from agents.scoring.exceptions import ModelError, ShadowModelError
    from agents.sla.exceptions import SlaConfigError

    return {  # the first kind that matches names the setting: a subclass before its base
        ShadowModelError: "LEADFLOW_SHADOW_MODEL_PATH",
        ModelError: "LEADFLOW_SCORING_MODEL_PATH",
        RoutingConfigError: "LEADFLOW_ROUTING_CONFIG_PATH",
        SlaConfigError: "LEADFLOW_SLA_CONFIG_PATH",
        RosterError: "LEADFLOW_ROSTER_PATH",
    }


def _operational_errors() -> tuple[type[Exception], ...]:
    """Failures a person fixes outside the code (a topic the broker refuses, a registry or
    stack that will not start, a start-up check): their message is the whole story."""
    from leadflow.devstack.exceptions import DevStackError
    from streams.codec.exceptions import SchemaRegistryError
    from streams.startup_checks import StartupError
    from streams.topics import TopicError

    return (DevStackError, SchemaRegistryError, StartupError, TopicError)


def known_failure_line(exc: Exception) -> str | None:
    """One line for a failure that needs no traceback (None for anything else, a bug): a bad
    configuration file, Kafka or Redis unreachable, or an operational error."""
    line = config_error_line(exc)
    if line is not None:
        return line
    if isinstance(exc, (KafkaUnavailable, RedisUnavailable)):
        return (
            f"{exc}. Start the local stack with `leadflow dev up` or check the LEADFLOW_KAFKA_* / "
            "LEADFLOW_REDIS_* settings."
        )
    if isinstance(exc, _operational_errors()):
        return " ".join(str(exc).split())
    return None


def config_error_line(exc: Exception) -> str | None:
    """One line for an invalid scoring/routing/SLA/roster file (None for other errors):
    ``invalid config/sla.yaml: not valid YAML at line 3, column 9: ...; fix it or point
    LEADFLOW_SLA_CONFIG_PATH at another file``."""
    for kind, variable in _config_errors().items():
        if isinstance(exc, kind):
            text = " ".join(str(exc).split())
            return f"{text}; fix the file or point {variable} at another one"
    return None


class LeadflowGroup(click.Group):
    """The root command group: known failures end as one line, never a traceback.

    A configuration file error, Kafka or Redis unreachable, or an operational error (a topic the
    broker refuses, a dev stack that does not start: :func:`known_failure_line`) raised anywhere
    below becomes a one-line click error; with
    LEADFLOW_LOG_FORMAT=json a click error is logged as one JSON line instead of printed, so a
    worker's output stays parseable from its first line to its last."""

    def invoke(self, ctx: click.Context):
        from streams.logs import active_format

        try:
            try:
                return super().invoke(ctx)
            except Exception as exc:
                line = known_failure_line(exc)
                if line is None:
                    raise
                raise click.ClickException(line) from None
        except click.UsageError:
            raise  # usage errors print the usage, for a person at a terminal
        except click.ClickException as exc:
            if active_format() != "json":
                raise
            logging.getLogger("leadflow").error("%s", exc.format_message())
            raise click.exceptions.Exit(exc.exit_code) from None
