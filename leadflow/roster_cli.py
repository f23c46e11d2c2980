"""``leadflow roster``: load the roster into Redis (validated, live) and show what workers use.

Listed by the main group (``leadflow.cli.main``). Settings come from
``streams.settings.load_settings()`` (``LEADFLOW_REDIS_URL``, ``LEADFLOW_REDIS_KEY_PREFIX``,
``LEADFLOW_ROUTING_CONFIG_PATH``, ``LEADFLOW_ROSTER_PATH``).

    leadflow roster load [FILE] [--dry-run] [--if-empty]   # FILE defaults to LEADFLOW_ROSTER_PATH
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
    from agents.domain.yamlio import read_yaml
    from agents.routing.config import load_routing_config
    from agents.routing.exceptions import RosterError, RoutingConfigError
    from agents.routing.roster import parse_roster

    try:
        config = load_routing_config(settings.routing_config_path)
    except RoutingConfigError as exc:
        raise click.ClickException(
            _bullets(f"routing config {settings.routing_config_path} is invalid", exc.problems)
        ) from None
    try:
        raw = read_yaml(path, RosterError)
        return parse_roster(raw, config=config, now_ms=now_ms or int(time.time() * 1000), source=str(path))
    except RosterError as exc:
        raise click.ClickException(_bullets(f"roster {path} is invalid", exc.problems, count=True)) from None


def _bullets(title: str, lines: list[str], *, count: bool = False) -> str:
    if len(lines) == 1:  # one problem (e.g. a YAML syntax error): one line
        return f"{title}: {lines[0]}"
    return title + (f" ({len(lines)} problems)" if count else "") + ":\n" + "\n".join(f"  - {line}" for line in lines)


@click.group()
def roster() -> None:
    """Sales roster in Redis: reps, territories, rules, account owners (live)."""


@roster.command("load")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Validate only; do not touch Redis.")
@click.option(
    "--if-empty",
    is_flag=True,
    help="Load only if Redis holds no roster yet (first start of a stack); otherwise do nothing.",
)
def roster_load(file: Path | None, dry_run: bool, if_empty: bool) -> None:
    """Validate FILE (default: LEADFLOW_ROSTER_PATH) and make it the live roster."""
    settings = _settings()
    click.echo(load_roster(settings, file, dry_run=dry_run, if_empty=if_empty))


def load_roster(settings: Settings, file: Path | None = None, *, dry_run: bool = False, if_empty: bool = False) -> str:
    """Validate and load the roster file; returns what happened in one line (click errors
    otherwise). Used by `roster load` and `leadflow run`."""
    path = file or settings.roster_path
    where = f"{redact_url(settings.redis_url)} (prefix {settings.redis_key_prefix!r})"
    if if_empty and not dry_run:
        existing = asyncio.run(_current_version(settings))
        if existing:
            return f"a roster (version {existing}) is already loaded in {where}; left as is (--if-empty)"
    now_ms = int(time.time() * 1000)
    parsed = validate_roster_file(path, settings, now_ms=now_ms)
    for warning in parsed.warnings:
        click.echo(f"warning: {warning}", err=True)
    summary = (
        f"{len(parsed.reps)} reps, {len(parsed.territories)} territories, {len(parsed.rules)} rules, "
        f"{len(parsed.account_owners)} account owners"
    )
    if dry_run:
        return f"{path}: valid ({summary}); not loaded (--dry-run)"
    version = asyncio.run(_load(settings, parsed, str(path), now_ms, if_empty=if_empty))
    if version is None:  # another loader won the race
        return f"a roster is already loaded in {where}; left as is (--if-empty)"
    return f"loaded {path} into {where}: roster version {version}; {summary}"


async def _load(settings: Settings, parsed, source: str, now_ms: int, *, if_empty: bool = False) -> int | None:
    from agents.routing.roster_store import RETRYABLE_ERRORS, RosterStore

    client = _client(settings)
    try:
        return await RosterStore(client, settings.redis_key_prefix).load(
            parsed, source=source, loaded_at_ms=now_ms, if_empty=if_empty
        )
    except RETRYABLE_ERRORS as exc:
        raise click.ClickException(describe_redis_error(exc, settings)) from None
    finally:
        await client.aclose()


async def _current_version(settings: Settings) -> int:
    """Version of the roster in Redis, 0 if there is none (no document)."""
    from agents.routing.roster_store import RETRYABLE_ERRORS, roster_keys

    version_key, doc_key = roster_keys(settings.redis_key_prefix)
    client = _client(settings)
    try:
        version, exists = await client.get(version_key), await client.exists(doc_key)
    except RETRYABLE_ERRORS as exc:
        raise click.ClickException(describe_redis_error(exc, settings)) from None
    finally:
        await client.aclose()
    return int(version or 0) if exists else 0


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
        click.echo(
            f"no roster loaded in {redact_url(settings.redis_url)} (prefix {settings.redis_key_prefix!r}); "
            "every lead goes to the fallback owner. Load one with `leadflow roster load FILE`."
        )
        return
    meta = info["meta"]
    click.echo(
        f"roster version {info['version']}: {meta.get('label') or '(no label)'}; "
        f"loaded from {meta.get('source')} at {info['loaded_at']}"
    )
    for warning in info["warnings"]:
        click.echo(f"warning: {warning}")
    click.echo(f"\n{'rep':18} {'role':14} {'team':18} {'status':36} {'open/cap':>9}  territories")
    for rep in info["reps"]:
        cap = "-" if rep["capacity"] is None else str(rep["capacity"])
        click.echo(
            f"{rep['id']:18} {rep['role']:14} {rep['team'] or '-':18} {rep['status']:36} "
            f"{str(rep['open']) + '/' + cap:>9}  {','.join(rep['territories']) or '-'}"
        )
    click.echo("\nterritories: " + "; ".join(f"{t['id']} {sorted(t['countries'])}" for t in info["territories"]))
    click.echo("rules (first match wins):")
    for rule in info["rules"]:
        cond = {k: v for k, v in rule.items() if k not in ("name", "default_owner", "members") and v not in ([], None)}
        click.echo(
            f"  {rule['name']}: {cond or 'every lead'} -> {rule['members'] or 'reps serving the territory'}"
            f" (default {rule['default_owner']})"
        )
    click.echo("account owners: " + (", ".join(f"{d} -> {r}" for d, r in info["account_owners"].items()) or "none"))


async def _show(settings: Settings) -> dict[str, Any]:
    from agents.routing.roster import iso
    from agents.routing.roster_store import RETRYABLE_ERRORS, RosterStore

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
        reps.append(
            {**rep.to_dict(), "open": counts.get(rep.id, 0), "status": rep.unavailable_reason(now_ms) or "available"}
        )
    loaded = snap.meta.get("loaded_at_ms")
    return {
        "version": snap.version,
        "meta": snap.meta,
        "loaded_at": iso(loaded) if loaded else None,
        "warnings": body["warnings"],
        "reps": reps,
        "territories": body["territories"],
        "rules": body["rules"],
        "account_owners": body["account_owners"],
    }
