"""Terminal report of a what-if replay (rich tables): counts, rep ids and priorities only -
never a lead id, email or name."""

from __future__ import annotations

from datetime import datetime, timezone

from rich.console import Console
from rich.table import Table

from agents.routing.config import PRIORITIES
from leadflow.whatif.replay import WhatIf


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _signed(n: int) -> str:
    return f"{n:+,}" if n else "0"


def render(result: WhatIf, console: Console) -> None:
    live, cand = result.live, result.candidate
    console.print(
        f"What-if window {iso(result.from_ms)} .. {iso(result.to_ms)}: read {result.inputs_read:,} input records, "
        f"replayed {result.events_replayed:,} events ({result.rejected:,} rejected by capture, "
        f"{result.erased_leads:,} erased leads left out)"
    )
    for note in result.notes:
        console.print(f"[yellow]note:[/yellow] {note}")

    summary = Table(title="MQLs and priorities")
    for name in ("", f"live ({live.model_version})", f"candidate ({cand.model_version})", "change"):
        summary.add_column(name, justify="left" if not name else "right")
    summary.add_row("MQLs", f"{live.mqls:,}", f"{cand.mqls:,}", _signed(cand.mqls - live.mqls))
    for p in PRIORITIES:
        a, b = live.priorities.get(p, 0), cand.priorities.get(p, 0)
        summary.add_row(f"  {p}", f"{a:,}", f"{b:,}", _signed(b - a))
    summary.add_row("leads gained (MQL only with the candidate)", "", "", f"{len(result.gained):,}")
    summary.add_row("leads lost (MQL only with the live model)", "", "", f"{len(result.lost):,}")
    console.print(summary)

    changes = result.priority_changes()
    table = Table(title="Priority changes (leads that are MQLs under both models)")
    table.add_column("live")
    table.add_column("candidate")
    table.add_column("leads", justify="right")
    for (was, becomes), n in changes.items():
        table.add_row(was, becomes, f"{n:,}")
    if not changes:
        table.add_row("-", "-", "0")
    console.print(table)

    deltas = result.rep_deltas()
    reps = Table(title="Assignments per rep that would change")
    for name in ("owner", "live", "candidate", "change"):
        reps.add_column(name, justify="left" if name == "owner" else "right")
    for owner, (a, b) in deltas.items():
        reps.add_row(owner, f"{a:,}", f"{b:,}", _signed(b - a))
    if not deltas:
        reps.add_row("(none)", "", "", "0")
    console.print(reps)
