"""`leadflow demo`: the newcomer's run - the whole pipeline on realistic traffic, in the terminal.

What it does, in order:
1. starts the local stack (Kafka + Redis) unless it already runs (``--no-stack``: use the
   configured broker as it is);
2. gives this run its own topic prefix, app id, Redis key prefix and data dir
   (``demo-HHMMSS``), so earlier runs and a ``leadflow run`` never interfere;
3. writes time-compressed copies of the routing and SLA configuration (every SLA, escalation
   and recycling duration divided by ``speed``, default 60: a 10-minute P1 SLA becomes 10 s)
   and points the worker at them; loads the roster into Redis when the routing capability
   is installed;
4. starts one worker (a child process) and waits until its consumer group is ready;
5. publishes simulator traffic at ``rate`` events/s; simulated CRM reps react to the
   assignments they see (first touches, some late, dispositions, some missing) - at the
   ``rep_timing`` pace ("demo": accepted, SQL, converted and rejected leads within the
   first minute at 60x);
6. shows what happens: MQLs, assignments with owner and reason, SLA breaches,
   dispositions, data-quality issues, dead letters, with a live summary (events/s,
   event->MQL and event->assignment latency, speed-to-lead p50/p95 in business time, SLA
   compliance) and the worker's metrics URL.

Ctrl-C (or ``--duration``) stops everything it started: publisher, worker, the stack if it
started it; the run's topics are deleted unless ``--keep-topics``.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agents.domain.durations import format_seconds, is_duration, parse_duration_ms
from agents.domain.yamlio import read_yaml
from leadflow.simulator.harness import (
    HarnessError,
    OutputReader,
    StackSession,
    WorkerProcess,
    end_offsets,
    forget_redis_keys,
    percentile,
    settings_env,
    wait_for_group,
)
from streams.connections import kafka_client_kwargs
from streams.settings import Settings

log = logging.getLogger(__name__)

OUTPUT_ROLES = ("mqls", "assignments", "sla_breaches", "dispositions", "data_quality", "dead_letters", "lead_scored")
_UNSCALED_KEYS = frozenset({"clock_skew_tolerance"})  # real clock skew, not business time


@dataclass
class DemoOptions:
    rate: float = 20.0  # input events per second
    seed: int | None = None  # None: random (printed, so a run can be repeated)
    speed: float = 60.0  # business time runs this many times faster (SLAs, reps' delays)
    # How fast simulated reps move a lead on after the first touch (business minutes, then
    # divided by speed): "demo" - qualified on the first call, SQL and opportunity within the
    # business hour, so a minute of traffic at 60x shows every outcome; "realistic" - hours to
    # days (leadflow.simulator.crm.REP_TIMINGS).
    rep_timing: str = "demo"
    duration: float | None = None  # seconds; None = until Ctrl-C
    mix: dict[str, float] | None = None
    bad_share: float = 0.003  # deliberately bad events (dead letters) among the traffic
    manage_stack: bool = True
    keep_stack: bool = False
    keep_topics: bool = False
    plain: bool = False  # line-by-line output instead of the live view (auto when not a TTY)
    feed_lines: int = 14
    # Development: run the worker as another module (e.g. "leadflow.bench_worker" with LEADFLOW_BENCH_*
    # in worker_env to try a capability before it is wired into streams.app).
    worker_module: str = "leadflow.cli"
    worker_env: dict[str, str] = field(default_factory=dict)


# --- compressed-time configuration --------------------------------------------------------


def compress_sla_config(raw: Any, speed: float) -> Any:
    """Every duration string ('2h', '30d', ...) divided by ``speed``; sweep buckets of 1 s."""

    def walk(node: Any, key: str | None = None) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, key) for v in node]
        if key not in _UNSCALED_KEYS and is_duration(node):
            return format_seconds(max(parse_duration_ms(node) / speed, 1))
        return node

    out = walk(raw)
    if isinstance(out, dict):
        out.setdefault("sweep", {})
        if isinstance(out["sweep"], dict):
            out["sweep"]["bucket_seconds"] = 1
        out["version"] = f"{out.get('version', 'sla')}-demo-x{speed:g}"
    return out


def compress_routing_config(raw: Any, speed: float) -> Any:
    """First-touch SLA minutes (per priority and per segment override) divided by ``speed``."""
    if not isinstance(raw, dict):
        return raw
    out = dict(raw)
    out["priorities"] = {
        p: {**rule, "first_touch_sla_minutes": round(float(rule["first_touch_sla_minutes"]) / speed, 4)}
        if isinstance(rule, dict) and "first_touch_sla_minutes" in rule
        else rule
        for p, rule in (raw.get("priorities") or {}).items()
    }
    if isinstance(raw.get("segment_sla_overrides"), dict):
        out["segment_sla_overrides"] = {
            seg: {p: round(float(m) / speed, 4) for p, m in (prios or {}).items()}
            for seg, prios in raw["segment_sla_overrides"].items()
        }
    out["version"] = f"{raw.get('version', 'routing')}-demo-x{speed:g}"
    return out


def write_compressed_configs(base: Settings, run_dir: Path, speed: float) -> dict[str, Path]:
    """Compressed copies of the routing and SLA files that exist; {setting name: path}."""
    written: dict[str, Path] = {}
    for setting, compress in (
        ("routing_config_path", compress_routing_config),
        ("sla_config_path", compress_sla_config),
    ):
        source = Path(getattr(base, setting))
        if not source.exists():
            continue
        # The configuration files' own reader: a duplicate key must not vanish in the copy.
        variable = f"LEADFLOW_{setting.upper()}"

        def unreadable(problems: list[str], path: str, variable: str = variable) -> HarnessError:
            return HarnessError(f"cannot read {path} ({variable}): {problems[0]}")

        raw = read_yaml(source, unreadable)
        target = run_dir / f"{source.stem}.demo-x{speed:g}.yaml"
        header = f"# {source.name} with every SLA duration divided by {speed:g} (leadflow demo)\n"
        target.write_text(header + yaml.safe_dump(compress(raw, speed), sort_keys=False), encoding="utf-8")
        written[setting] = target
    return written


def demo_settings(base: Settings, run_id: str, run_dir: Path, configs: dict[str, Path]) -> Settings:
    data = base.model_dump()
    data.update(
        topic_prefix=run_id,
        app_id=run_id,
        redis_key_prefix=run_id,
        data_dir=run_dir / "data",
        sweep_bucket_s=1,
        sweep_interval_s=0.5,
        **configs,
    )
    return Settings(**data)


def load_roster(settings: Settings, run_dir: Path) -> str:
    """Load config's roster into this run's Redis prefix, through the routing capability's own
    ``roster load`` command; a readable note of what happened (never raises)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    if not Path(settings.roster_path).exists():
        return f"no roster file at {settings.roster_path}: routing uses its fallback owner"
    code = (
        "import sys\nfrom leadflow.roster_cli import roster\n"
        "roster.main(['load', sys.argv[1]], prog_name='leadflow roster', standalone_mode=True)"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(settings.roster_path)],
            env=settings_env(settings),
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"roster not loaded ({exc}); routing uses its fallback owner"
    (run_dir / "roster-load.log").write_text(done.stdout + done.stderr)
    if done.returncode == 0:
        return f"roster {Path(settings.roster_path).name} loaded"
    if "No module named 'leadflow.roster_cli'" in done.stderr:
        return "routing capability not installed: no roster loaded"
    last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["?"]
    return f"roster not loaded ({last[0]}); see {run_dir / 'roster-load.log'}"


# --- what the demo has seen ---------------------------------------------------------------


@dataclass
class FeedLine:
    serial: int
    at: float
    kind: str
    lead: str
    detail: str


@dataclass
class DemoState:
    speed: float
    started: float = field(default_factory=time.monotonic)
    published: int = 0
    crm_published: int = 0
    counts: Counter = field(default_factory=Counter)
    by_persona: dict[str, Counter] = field(default_factory=dict)
    mql_latency_ms: list[float] = field(default_factory=list)
    assign_latency_ms: list[float] = field(default_factory=list)
    speed_to_lead_ms: list[float] = field(default_factory=list)  # business time
    mql_cause: dict[str, int] = field(default_factory=dict)  # mql event id -> input broker time
    assignments: dict[str, dict[str, Any]] = field(default_factory=dict)  # assignment id -> facts
    feed: deque = field(default_factory=lambda: deque(maxlen=200))
    recent_rate: deque = field(default_factory=lambda: deque(maxlen=20))  # (monotonic, published)
    worker_pid: int | None = None
    notes: list[str] = field(default_factory=list)

    def add(self, kind: str, lead: str, detail: str) -> None:
        self.counts["feed_lines"] += 1
        self.feed.append(FeedLine(self.counts["feed_lines"], time.time(), kind, lead, detail))

    def persona_count(self, persona: str | None, what: str) -> None:
        self.by_persona.setdefault(persona or "other", Counter())[what] += 1

    def rate(self) -> float:
        now = time.monotonic()
        self.recent_rate.append((now, self.published))
        t0, n0 = self.recent_rate[0]
        return (self.published - n0) / (now - t0) if now - t0 > 0.2 else 0.0

    def sla_compliance(self, now_ms: int) -> tuple[int, int]:
        """(touched on time, assignments past their due time) - from the simulated reps."""
        due = [a for a in self.assignments.values() if a["due"] <= now_ms]
        on_time = sum(1 for a in due if a.get("touched") is not None and a["touched"] <= a["due"])
        return on_time, len(due)

    def summary(self) -> dict[str, Any]:
        on_time, due = self.sla_compliance(int(time.time() * 1000))

        def pct(values: list[float], q: float) -> float | None:
            v = percentile(values, q)
            return None if v is None else round(v, 1)

        return {
            "seconds": round(time.monotonic() - self.started, 1),
            "published": self.published,
            "crm_events": self.crm_published,
            **{k: v for k, v in sorted(self.counts.items()) if k != "feed_lines"},
            "event_to_mql_ms": {"p50": pct(self.mql_latency_ms, 50), "p95": pct(self.mql_latency_ms, 95)},
            "event_to_assignment_ms": {"p50": pct(self.assign_latency_ms, 50), "p95": pct(self.assign_latency_ms, 95)},
            "speed_to_lead_business_min": {
                "p50": _minutes(percentile(self.speed_to_lead_ms, 50)),
                "p95": _minutes(percentile(self.speed_to_lead_ms, 95)),
            },
            "sla_on_time": on_time,
            "sla_due": due,
            "by_persona": {k: dict(v) for k, v in sorted(self.by_persona.items())},
        }


def _minutes(ms: float | None) -> float | None:
    return None if ms is None else round(ms / 60_000, 1)


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f} ms" if value < 10_000 else f"{value / 1000:.1f} s"


def _fmt_min(ms: float | None) -> str:
    if ms is None:
        return "-"
    minutes = ms / 60_000
    return f"{minutes:.1f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


# --- the run ----------------------------------------------------------------------------------


class Demo:
    def __init__(self, settings: Settings, opts: DemoOptions, *, run_id: str, run_dir: Path, console=None) -> None:
        from leadflow.simulator import CrmSimulator, TrafficSimulator
        from leadflow.simulator.crm import REP_TIMINGS
        from streams.app import build_codec
        from streams.topics import TopicNames

        self.settings, self.opts, self.run_id, self.run_dir = settings, opts, run_id, run_dir
        self.names = TopicNames.from_settings(settings)
        # A configured Schema Registry's ids both ways (registered on the first encode).
        self.codec = build_codec(settings, register=False)
        self.seed = opts.seed if opts.seed is not None else int(time.time()) % 100_000
        self.crm = CrmSimulator(self.seed, speed=opts.speed, timing=REP_TIMINGS[opts.rep_timing])
        self.sim = TrafficSimulator(
            self.seed,
            start_ms=int(time.time() * 1000),
            mix=opts.mix,
            bad_share=opts.bad_share,
            crm=self.crm,
            tag=run_id,
            lead_id_key=settings.lead_id_key_bytes,
        )
        self.state = DemoState(speed=opts.speed)
        self.console = console
        self.stop = asyncio.Event()
        self._crm_queue: list[tuple[int, int, Any]] = []
        self._crm_serial = 0
        self.worker: WorkerProcess | None = None

    # -- describing leads --

    def who(self, lead_id: str, record: dict[str, Any] | None = None) -> str:
        info = self.sim.leads.get(lead_id)
        if info is not None:
            ident = info.identity
            title = f", {ident.job_title}" if ident.job_title else ""
            company = f" @ {ident.company}" if ident.company else ""
            return f"{ident.first_name} {ident.last_name}{title}{company} [{info.persona}]"
        if record is not None and (record.get("company") or record.get("job_title")):
            return f"{record.get('job_title') or '?'} @ {record.get('company') or '?'}"
        return lead_id

    # -- reacting to outputs --

    def absorb(self, rows) -> None:
        st = self.state
        for _topic, subject, value, _ts, _key in rows:
            if subject is None:
                st.counts["undecodable_outputs"] += 1
                continue
            if subject == "lead_scored":
                st.counts["scored"] += 1
                continue
            if subject == "lead_qualified" and value.get("upgrade_of"):  # not a new MQL: a priority raise
                st.add(
                    "UPGRADE",
                    self.who(value["lead_id"], value),
                    f"{value.get('previous_priority_hint')} -> {value.get('priority_hint')} · "
                    f"{(value.get('handoff') or {}).get('trigger') or ''}",
                )
                if value.get("cause_received_at"):
                    st.mql_cause[value["event_id"]] = value["cause_received_at"]
                continue
            if subject == "lead_qualified":
                st.counts["mqls"] += 1
                persona = self.sim.persona_of(value["lead_id"])
                st.persona_count(persona, "mqls")
                if value.get("cause_received_at"):
                    st.mql_cause[value["event_id"]] = value["cause_received_at"]
                    st.mql_latency_ms.append(value["qualified_at"] - value["cause_received_at"])
                fast = " fast-track" if value.get("fast_track") else ""
                trigger = (value.get("handoff") or {}).get("trigger") or ""
                st.add(
                    "MQL",
                    self.who(value["lead_id"], value),
                    f"score {value['score']:.0f} (fit {value.get('fit_grade') or '-'}){fast} · {trigger}"
                    f"{' · hint ' + value['priority_hint'] if value.get('priority_hint') else ''}",
                )
            elif subject == "lead_assigned":
                st.counts["assignments"] += 1
                cause = st.mql_cause.get(value["mql_event_id"])
                if cause:
                    st.assign_latency_ms.append(value["assigned_at"] - cause)
                sla_s = (value["first_touch_due_at"] - value["assigned_at"]) / 1000
                st.assignments[value["event_id"]] = {
                    "due": value["first_touch_due_at"],
                    "touched": None,
                    "assigned_at": value["assigned_at"],
                }
                fallback = " FALLBACK" if value.get("is_fallback") else ""
                st.add(
                    "ASSIGNED",
                    self.who(value["lead_id"]),
                    f"→ {value['owner_name']} ({value['owner_role']}) {value['priority']}{fallback} · "
                    f"rule {value['rule']}: {value['reason']} · first touch due in {sla_s:.0f}s "
                    f"(= {sla_s * self.opts.speed / 60:.0f} min)",
                )
                self.schedule_crm(value)
            elif subject == "sla_breached":
                st.counts["sla_breaches"] += 1
                tier = "first-touch SLA" if value["tier"] == 0 else f"escalation tier {value['tier']}"
                to = value.get("escalate_to_id") or value["escalate_to_role"]
                st.add(
                    "SLA BREACH",
                    self.who(value["lead_id"]),
                    f"{value['owner_id']} missed {value['priority']} {tier} by "
                    f"{value['minutes_late'] * self.opts.speed:.0f} business min → {to}",
                )
            elif subject == "lead_dispositioned":
                st.counts["dispositions"] += 1
                reason = f" ({value['disposition']})" if value.get("disposition") else ""
                st.add(
                    "DISPOSITION",
                    self.who(value["lead_id"]),
                    f"{value['status']}{reason} → {value['outcome']}, stage {value['new_stage']}"
                    f"{' · score reset' if value.get('score_reset') else ''}",
                )
            elif subject == "data_quality_issue":
                st.counts["data_quality"] += 1
                st.add(
                    "DATA QUALITY",
                    self.who(value["lead_id"]) if value.get("lead_id") else "-",
                    f"{value['issue_code']}: {value['detail']}",
                )
            elif subject == "dead_letter":
                st.counts["dead_letters"] += 1
                st.add(
                    "DEAD LETTER",
                    value["source_topic"].rsplit(".", 1)[-1],
                    f"{value['reason_code']}: {value['reason']}",
                )

    def schedule_crm(self, assignment: dict[str, Any]) -> None:
        persona = self.sim.persona_of(assignment["lead_id"])
        actions = self.crm.react(assignment, persona=persona)
        for action in actions:
            self._crm_serial += 1
            heapq.heappush(self._crm_queue, (action.at_ms, self._crm_serial, (assignment["event_id"], action)))

    # -- tasks --

    async def publish_traffic(self, pub) -> None:
        def on_sent(event, stamped_ms: int) -> None:
            self.state.published += 1

        await pub.run(self.sim, rate=self.opts.rate, stop=self.stop, on_sent=on_sent)

    async def publish_crm(self, pub) -> None:
        from leadflow.simulator import SimEvent

        while not self.stop.is_set():
            now_ms = int(time.time() * 1000)
            while self._crm_queue and self._crm_queue[0][0] <= now_ms:
                _, _, (assignment_id, action) = heapq.heappop(self._crm_queue)
                event = SimEvent(
                    seq=-1,
                    at_ms=action.at_ms,
                    subject="crm_status",
                    record=action.record,
                    encoding="json",
                    key=action.record["lead_id"].encode(),
                    persona="crm",
                    lead_id=None,
                )
                await pub.send(event, now_ms=now_ms)
                self.state.crm_published += 1
                facts = self.state.assignments.get(assignment_id)
                if action.status == "first_touch" and facts is not None and facts["touched"] is None:
                    facts["touched"] = now_ms
                    self.state.speed_to_lead_ms.append((now_ms - facts["assigned_at"]) * self.opts.speed)
                if action.status == "rejected" and not action.record.get("disposition"):
                    self.state.counts["rejections_without_reason_sent"] += 1
            await asyncio.sleep(0.1)

    async def read_outputs(self, reader: OutputReader) -> None:
        while not self.stop.is_set():
            self.absorb(await reader.poll(200))
            if self.worker is not None and not self.worker.alive():
                self.state.notes.append(f"the worker exited; see {self.worker.log_file}")
                self.stop.set()

    async def run(self) -> DemoState:
        from leadflow.simulator import Publisher
        from streams.topics import ensure_topics

        await ensure_topics(self.settings)
        outputs = [getattr(self.names, role) for role in OUTPUT_ROLES]
        reader = OutputReader(
            kafka_client_kwargs(self.settings),
            self.codec,
            await end_offsets(kafka_client_kwargs(self.settings), outputs),
        )
        await reader.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)
        view = LiveView(self) if not self.opts.plain else PlainView(self)
        try:
            async with Publisher(
                kafka_client_kwargs(self.settings), self.names, self.codec, client_id="leadflow-demo"
            ) as pub:
                tasks = [
                    asyncio.create_task(coro)
                    for coro in (
                        self.publish_traffic(pub),
                        self.publish_crm(pub),
                        self.read_outputs(reader),
                        view.run(),
                    )
                ]
                if self.opts.duration:
                    loop.call_later(self.opts.duration, self.stop.set)
                await self.stop.wait()
                for task in tasks:
                    task.cancel()
                results = await asyncio.gather(*tasks, return_exceptions=True)
                for result in results:
                    if isinstance(result, Exception) and not isinstance(result, asyncio.CancelledError):
                        self.state.notes.append(f"{type(result).__name__}: {result}")
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await reader.stop()
        return self.state


# --- terminal views ------------------------------------------------------------------------

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


def run_demo(base: Settings, opts: DemoOptions, *, console=None, say=print) -> dict[str, Any]:
    """Run the demo until ``opts.duration`` or Ctrl-C; returns the final summary."""
    from rich.console import Console

    console = console or Console()
    opts.plain = opts.plain or not console.is_terminal
    run_id = time.strftime("demo-%H%M%S")
    run_dir = Path(base.stack_dir) / "demo" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    configs = write_compressed_configs(base, run_dir, opts.speed)
    settings = demo_settings(base, run_id, run_dir, configs)
    summary: dict[str, Any] = {"run_id": run_id}
    with StackSession(settings, manage=opts.manage_stack, keep=opts.keep_stack) as stack:
        say(stack.describe())
        worker = WorkerProcess(settings, run_dir, module=opts.worker_module, extra_env=opts.worker_env)
        demo = None
        try:
            say(load_roster(settings, run_dir))
            for setting, path in configs.items():
                say(f"{setting.replace('_path', '').replace('_', ' ')}: SLAs ÷{opts.speed:g} → {path}")
            worker.start()
            say(f"worker pid {worker.pid} starting (log {worker.log_file})")
            with console.status("waiting for the worker to join its consumer group ..."):
                waited = asyncio.run(
                    wait_for_group(kafka_client_kwargs(settings), settings.app_id, timeout=120, worker=worker)
                )
            say(f"worker ready after {waited:.1f}s")
            demo = Demo(settings, opts, run_id=run_id, run_dir=run_dir, console=console)
            demo.worker, demo.state.worker_pid = worker, worker.pid
            say(
                f"seed {demo.seed}: publishing {opts.rate:g} events/s"
                + (f" for {opts.duration:g}s" if opts.duration else " - Ctrl-C to stop")
            )
            asyncio.run(demo.run())
        finally:
            # Ctrl-C again while cleaning up must not leave the worker or the stack behind.
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                say("stopping the worker ...")
                worker.stop(timeout=20)
                if not opts.keep_topics:
                    try:
                        asyncio.run(_delete_run_topics(settings))
                    except Exception as exc:  # noqa: BLE001 - the broker may be gone already
                        log.warning("could not delete the demo's topics: %s", exc)
                shutil.rmtree(settings.data_dir, ignore_errors=True)
                forget_redis_keys(settings)
                if stack.started and not opts.keep_stack:
                    say(f"stopping {' + '.join(stack.started)} ...")
            finally:
                signal.signal(signal.SIGINT, previous)
        if demo is not None:
            summary.update(
                demo.state.summary(),
                seed=demo.seed,
                notes=demo.state.notes,
                worker_peak_rss_mib=round((worker.peak_rss_kib or 0) / 1024, 1),
            )
    summary["topics_kept"] = opts.keep_topics
    summary["worker_left_running"] = worker.alive()
    return summary


async def _delete_run_topics(settings: Settings) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**kafka_client_kwargs(settings), request_timeout_ms=10000)
    await admin.start()
    try:
        prefix = settings.topic_prefix
        mine = [t for t in await admin.list_topics() if t.startswith(prefix + ".") or t.startswith(prefix + "-")]
        if mine:
            await admin.delete_topics(mine)
    finally:
        await admin.close()
