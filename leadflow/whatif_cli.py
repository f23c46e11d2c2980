"""`leadflow whatif`: what would a candidate scoring model have changed over the retained history?

Reads the input topics from --from (``leadflow.whatif.source``: no consumer group, nothing
written), replays them with the live model and the candidate (``leadflow.whatif.replay``) and
prints the differences (docs/model-tuning.md, "What-if replay").
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import click

# One parser for the window of both tuning commands (an ISO date or time with a zone).
from leadflow.calibrate_cli import _iso_ms
from leadflow.cli_context import kafka_settings_from


@click.command()
@click.option("--model", "model_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Candidate scoring model file.")  # fmt: skip
@click.option("--from", "window_from", required=True, metavar="ISO", help="Replay events from this time (e.g. 2026-01-01 or ...T00:00:00Z).")  # fmt: skip
@click.option("--to", "window_to", metavar="ISO", help="Events before this time only (default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@click.pass_context
def whatif(ctx: click.Context, model_path: Path, window_from: str, window_to: str | None, as_json: bool) -> None:
    """Re-score the retained input history with a candidate model, offline: how many MQLs,
    P1/P2/P3 and assignments per rep would change. Writes nothing to Kafka, tables or Redis."""
    import orjson
    from rich.console import Console

    from agents.scoring.exceptions import ModelError
    from agents.scoring.model import load_model

    from_ms = _iso_ms(window_from, "--from")
    assert from_ms is not None  # --from is required
    to_ms = _iso_ms(window_to, "--to") or int(time.time() * 1000)
    if to_ms <= from_ms:
        raise click.BadParameter("must be after --from", param_hint="--to")
    try:  # before any connection: a bad candidate fails at once, naming the key
        candidate = load_model(model_path)
    except ModelError as exc:
        raise click.ClickException(f"candidate model: {exc}") from None
    settings = kafka_settings_from(ctx)
    result, read_seconds = _run(settings, candidate, from_ms, to_ms)
    if as_json:
        click.echo(orjson.dumps({**result.to_dict(), "read_seconds": round(read_seconds, 2)}).decode())
        return
    from leadflow.whatif.report import render

    render(result, Console())


def _run(settings, candidate, from_ms: int, to_ms: int):
    from agents.capture.rules import CaptureLimits
    from agents.domain.yamlio import read_yaml
    from agents.routing.exceptions import RosterError
    from agents.routing.roster import parse_roster
    from leadflow.compose import load_configs
    from leadflow.whatif.replay import ReplayRules, replay
    from leadflow.whatif.report import iso
    from leadflow.whatif.source import HistoryUnavailable, read_history
    from streams.app import build_codec

    configs = load_configs(settings)
    # The roster file stands for the roster in Redis (offline: docs/model-tuning.md).
    roster = parse_roster(
        read_yaml(settings.roster_path, RosterError), config=configs.routing, source=str(settings.roster_path)
    )
    setup = ReplayRules(
        limits=CaptureLimits.from_settings(settings),
        routing=configs.routing,
        roster=roster,
        dispositions=configs.sla.dispositions,
        dedup_window=settings.dedup_window,
        visitor_buffer_max=settings.visitor_buffer_max,
    )
    codec = build_codec(settings, register=False)
    try:
        history = asyncio.run(read_history(settings, codec, from_ms=from_ms))
    except HistoryUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    notes = [
        f"--from predates the retained history of {topic}: it starts at {iso(at)} (retention)"
        for topic, at in sorted(history.truncated_at_ms.items())
    ]
    if history.undecodable:
        notes.append(f"{history.undecodable:,} undecodable input records skipped (the workers dead-letter them)")
    result = replay(
        history.inputs,
        configs.scoring,
        candidate,
        setup,
        from_ms=from_ms,
        to_ms=to_ms,
        erased=history.erased,
        notes=tuple(notes),
    )
    return result, history.read_seconds
