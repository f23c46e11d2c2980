"""The demo in the terminal: a live dashboard, or line-by-line output for logs and non-terminals."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from leadflow.demo.traffic import Demo
from leadflow.simulator.harness import percentile


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} ms" if value < 10_000 else f"{value / 1000:.1f} s"


def _fmt_min(ms: float | None) -> str:
    if ms is None:
        return "-"
    minutes = ms / 60_000
    return f"{minutes:.1f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


_STYLES = {
    "MQL": "bold green",
    "UPGRADE": "green",
    "ASSIGNED": "bold cyan",
    "SLA BREACH": "bold red",
    "DISPOSITION": "magenta",
    "DATA QUALITY": "yellow",
    "DEAD LETTER": "dim red",
}


class LiveView:
    def __init__(self, demo: Demo) -> None:
        self.demo = demo

    def render(self):
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        demo, st = self.demo, self.demo.state
        s = demo.settings
        c = st.counts
        on_time, due = st.sla_compliance(int(time.time() * 1000))
        head = Table.grid(padding=(0, 2))
        head.add_row(
            f"[b]{st.published:,}[/] events ([b]{st.rate():.0f}[/]/s) + {st.crm_published:,} CRM",
            f"scored [b]{c['scored']:,}[/]",
            f"[green]MQLs [b]{c['mqls']}[/][/]",
            f"[cyan]assigned [b]{c['assignments']}[/][/]",
            f"[red]SLA breaches [b]{c['sla_breaches']}[/][/]",
            f"[magenta]dispositions [b]{c['dispositions']}[/][/]",
            f"[yellow]data-quality {c['data_quality']}[/]",
            f"[dim]dead letters {c['dead_letters']}[/]",
        )
        lat = Table.grid(padding=(0, 2))
        lat.add_row(
            f"event→MQL p50 [b]{_fmt_ms(percentile(st.mql_latency_ms, 50))}[/] p95 {_fmt_ms(percentile(st.mql_latency_ms, 95))}",
            f"event→assignment p50 [b]{_fmt_ms(percentile(st.assign_latency_ms, 50))}[/] p95 {_fmt_ms(percentile(st.assign_latency_ms, 95))}",
            f"speed-to-lead p50 [b]{_fmt_min(percentile(st.speed_to_lead_ms, 50))}[/] p95 {_fmt_min(percentile(st.speed_to_lead_ms, 95))} (business time)",
            f"SLA compliance [b]{(100 * on_time / due) if due else 100:.0f}%[/] ({on_time}/{due} due)"
            if due
            else "SLA compliance - (none due yet)",
        )
        info = (
            Text.from_markup(
                f"[dim]metrics[/] http://127.0.0.1:{s.metrics_port}/metrics   [dim]worker pid[/] {st.worker_pid}   "
                f"[dim]topics[/] {s.topic_prefix}.*   [dim]seed[/] {demo.seed}   [dim]SLAs and reps[/] ×{demo.opts.speed:g} faster   "
                f"[dim]Ctrl-C to stop[/]"
            )
            if s.metrics_port
            else Text("metrics off (LEADFLOW_METRICS_PORT=0)")
        )
        feed = Table(expand=True, box=None, pad_edge=False, show_edge=False)
        feed.add_column("time", style="dim", no_wrap=True, width=8)
        feed.add_column("event", no_wrap=True, width=12)
        feed.add_column("lead", no_wrap=True, overflow="ellipsis", ratio=2)
        feed.add_column("what happened", overflow="ellipsis", no_wrap=True, ratio=3)
        for line in list(st.feed)[-demo.opts.feed_lines :]:
            feed.add_row(
                time.strftime("%H:%M:%S", time.localtime(line.at)),
                Text(line.kind, style=_STYLES.get(line.kind, "")),
                line.lead,
                line.detail,
            )
        personas = Table(
            box=None, show_edge=False, pad_edge=False, title_justify="left", title="[dim]MQLs / visitors by persona[/]"
        )
        visitors = Counter(i.persona for i in demo.sim.leads.values())
        names = sorted(visitors)
        for name in names:
            personas.add_column(name.replace("_", " "), justify="right")
        if names:
            personas.add_row(*[f"{st.by_persona.get(n, Counter())['mqls']} / {visitors[n]}" for n in names])
        notes = Text("\n".join(st.notes), style="red") if st.notes else Text("")
        return Group(
            Panel(Group(head, lat, info), title=f"leadflow demo · {demo.run_id}", border_style="blue"),
            feed,
            personas,
            notes,
        )

    async def run(self) -> None:
        from rich.live import Live

        with Live(self.render(), console=self.demo.console, refresh_per_second=4, transient=False) as live:
            try:
                while True:
                    await asyncio.sleep(0.25)
                    live.update(self.render())
            except asyncio.CancelledError:
                live.update(self.render())
                raise


class PlainView:
    """Line-by-line output for logs and non-terminals."""

    def __init__(self, demo: Demo) -> None:
        self.demo = demo
        self._shown = 0  # serial of the last feed line printed

    async def run(self) -> None:
        console = self.demo.console
        last_summary = time.monotonic()
        try:
            while True:
                await asyncio.sleep(0.5)
                for line in list(self.demo.state.feed):
                    if line.serial > self._shown:
                        console.print(
                            f"{time.strftime('%H:%M:%S', time.localtime(line.at))} {line.kind:<12} "
                            f"{line.lead} | {line.detail}",
                            markup=False,
                            highlight=False,
                            soft_wrap=True,
                        )
                        self._shown = line.serial
                if time.monotonic() - last_summary > 5:
                    last_summary = time.monotonic()
                    console.print(
                        f"-- {_one_line(self.demo.state.summary())}", markup=False, highlight=False, soft_wrap=True
                    )
        except asyncio.CancelledError:
            raise


def _one_line(summary: dict[str, Any]) -> str:
    mql, asg, stl = summary["event_to_mql_ms"], summary["event_to_assignment_ms"], summary["speed_to_lead_business_min"]
    return (
        f"{summary['seconds']:.0f}s published {summary['published']} (+{summary['crm_events']} CRM) "
        f"scored {summary.get('scored', 0)} MQLs {summary.get('mqls', 0)} assigned {summary.get('assignments', 0)} "
        f"breaches {summary.get('sla_breaches', 0)} dispositions {summary.get('dispositions', 0)} "
        f"dead letters {summary.get('dead_letters', 0)} | event->MQL p50 {mql['p50']} p95 {mql['p95']} ms | "
        f"event->assignment p50 {asg['p50']} p95 {asg['p95']} ms | speed-to-lead p50 {stl['p50']} "
        f"p95 {stl['p95']} business min | SLA on time {summary['sla_on_time']}/{summary['sla_due']}"
    )
