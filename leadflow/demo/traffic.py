"""The demo's traffic: simulator events and simulated CRM reps published, the pipeline's outputs
read back into the run's state."""

from __future__ import annotations

import asyncio
import heapq
import signal
import time
from pathlib import Path
from typing import Any

from leadflow.demo.options import DemoOptions
from leadflow.demo.state import DemoState
from leadflow.simulator.harness import OutputReader, WorkerProcess, end_offsets
from streams.connections import kafka_client_kwargs
from streams.settings import Settings

OUTPUT_ROLES = ("mqls", "assignments", "sla_breaches", "dispositions", "data_quality", "dead_letters", "lead_scored")


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

    async def run(self, view) -> DemoState:
        """Publish and read until stopped, with ``view`` (``leadflow.demo.views``) showing it."""
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
