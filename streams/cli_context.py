"""Settings for CLI commands: built once per invocation, bad values as a one-line click error."""

from __future__ import annotations

import click

from streams.settings import Settings, SettingsError, load_settings


def settings_from(ctx: click.Context) -> Settings:
    if ctx.obj is None:
        try:
            ctx.obj = load_settings()
        except SettingsError as exc:
            raise click.ClickException(str(exc)) from None
    return ctx.obj
