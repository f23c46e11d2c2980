"""``leadflow roster``: load the roster into Redis (validated, live) and show what workers use.

Attach to the main CLI with ``main.add_command(roster)``. Settings come from
``streams.settings.load_settings()`` (``LEADFLOW_REDIS_URL``, ``LEADFLOW_REDIS_KEY_PREFIX``,
``LEADFLOW_ROUTING_CONFIG_PATH``, ``LEADFLOW_ROSTER_PATH``).

    leadflow roster load [FILE] [--dry-run]   # FILE defaults to LEADFLOW_ROSTER_PATH
    leadflow roster show [--json]

``load`` validates the file against the routing configuration and refuses it with every
problem named (``reps[2] (id 'sdr-sam').capacity: must be greater than 0 (max open leads), got 0``);
a valid roster replaces the current one atomically and applies to the next lead routed, on
every worker, without a restart. Warnings (an inactive account owner...) are printed.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import click

from streams.connections import describe_redis_error, redact_url, redis_async
from streams.settings import Settings, SettingsError, load_settings


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def _client(settings: Settings):
    return redis_async(settings, socket_connect_timeout=3, socket_timeout=10)


def validate_roster_file(path: Path, settings: Settings, *, now_ms: int | None = None):
    """Parse and validate a roster file against the routing config; raises click errors."""
    from agents.routing.config import load_routing_config, read_yaml
    from agents.routing.exceptions import RosterError, RoutingConfigError
    from agents.routing.roster import parse_roster

    try:
        config = load_routing_config(settings.routing_config_path)
    except RoutingConfigError as exc:
        raise click.ClickException(_bullets(f"routing config {settings.routing_config_path} is invalid", exc.problems)) from None
    try:
        raw = read_yaml(path, RosterError)
        return parse_roster(raw, config=config, now_ms=now_ms or int(time.time() * 1000), source=str(path))
    except RosterError as exc:
        raise click.ClickException(_bullets(f"roster {path} is invalid ({len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''})", exc.problems)) from None


def _bullets(title: str, lines: list[str]) -> str:
    return title + ":\n" + "\n".join(f"  - {line}" for line in lines)


@click.group()
def roster() -> None:
    """Sales roster in Redis: reps, territories, rules, account owners (live)."""


@roster.command("load")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate only; do not touch Redis.")
def roster_load(file: Path | None, dry_run: bool) -> None:
    """Validate FILE (default: LEADFLOW_ROSTER_PATH) and make it the live roster."""
    settings = _settings()
    path = file or settings.roster_path
    now_ms = int(time.time() * 1000)
    parsed = validate_roster_file(path, settings, now_ms=now_ms)
    for warning in parsed.warnings:
        click.echo(f"warning: {warning}", err=True)
    summary = f"{len(parsed.reps)} reps, {len(parsed.territories)} territories, {len(parsed.rules)} rules, " \
              f"{len(parsed.account_owners)} account owners"
    if dry_run:
        click.echo(f"{path}: valid ({summary}); not loaded (--dry-run)")
        return
    version = asyncio.run(_load(settings, parsed, str(path), now_ms))
    click.echo(f"loaded {path} into {redact_url(settings.redis_url)} (prefix {settings.redis_key_prefix!r}): "
               f"roster version {version}; {summary}")


async def _load(settings: Settings, parsed, source: str, now_ms: int) -> int:
    from streams.roster_store import RETRYABLE_ERRORS, RosterStore

    client = _client(settings)
    try:
        return await RosterStore(client, settings.redis_key_prefix).load(parsed, source=source, loaded_at_ms=now_ms)
    except RETRYABLE_ERRORS as exc:
        raise click.ClickException(describe_redis_error(exc, settings)) from None
    finally:
        await client.aclose()


@roster.command("show")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def roster_show(as_json: bool) -> None:
    """Print the live roster with each rep's availability and open-lead count."""
    settings = _settings()
    info = asyncio.run(_show(settings))
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    if not info["version"]:
        click.echo(f"no roster loaded in {redact_url(settings.redis_url)} (prefix {settings.redis_key_prefix!r}); "
                   "every lead goes to the fallback owner. Load one with `leadflow roster load FILE`.")
        return
    meta = info["meta"]
    click.echo(f"roster version {info['version']}: {meta.get('label') or '(no label)'}; "
               f"loaded from {meta.get('source')} at {info['loaded_at']}")
    for warning in info["warnings"]:
        click.echo(f"warning: {warning}")
    click.echo(f"\n{'rep':18} {'role':14} {'team':18} {'status':36} {'open/cap':>9}  territories")
    for rep in info["reps"]:
        cap = "-" if rep["capacity"] is None else str(rep["capacity"])
        click.echo(f"{rep['id']:18} {rep['role']:14} {rep['team'] or '-':18} {rep['status']:36} "
                   f"{str(rep['open']) + '/' + cap:>9}  {','.join(rep['territories']) or '-'}")
    click.echo("\nterritories: " + "; ".join(f"{t['id']} {sorted(t['countries'])}" for t in info["territories"]))
    click.echo("rules (first match wins):")
    for rule in info["rules"]:
        cond = {k: v for k, v in rule.items() if k not in ("name", "default_owner", "members") and v not in ([], None)}
        click.echo(f"  {rule['name']}: {cond or 'every lead'} -> {rule['members'] or 'reps serving the territory'}"
                   f" (default {rule['default_owner']})")
    click.echo("account owners: " + (", ".join(f"{d} -> {r}" for d, r in info["account_owners"].items()) or "none"))


async def _show(settings: Settings) -> dict[str, Any]:
    from agents.routing.roster import iso
    from streams.roster_store import RETRYABLE_ERRORS, RosterStore

    client = _client(settings)
    try:
        store = RosterStore(client, settings.redis_key_prefix)
        snap = await store.snapshot()
        if snap.roster is None:
            return {"version": snap.version, "meta": {}, "reps": []}
        counts = await store.open_counts(list(snap.roster.reps))
    except RETRYABLE_ERRORS as exc:
        raise click.ClickException(describe_redis_error(exc, settings)) from None
    finally:
        await client.aclose()
    now_ms = int(time.time() * 1000)
    body = snap.roster.to_dict()
    reps = []
    for rep in snap.roster.reps.values():
        reps.append({**rep.to_dict(), "open": counts.get(rep.id, 0),
                     "status": rep.unavailable_reason(now_ms) or "available"})
    loaded = snap.meta.get("loaded_at_ms")
    return {
        "version": snap.version, "meta": snap.meta, "loaded_at": iso(loaded) if loaded else None,
        "warnings": body["warnings"], "reps": reps, "territories": body["territories"],
        "rules": body["rules"], "account_owners": body["account_owners"],
    }
