"""The Quix Streams peer: leadflow's own pure rules - capture, then scoring - run by another
Python stream processor (Quix Streams, librdkafka) on the same broker, over the same input records
as the pipeline. The rules are pure, so pipeline / peer compares the frameworks.

Per record it does what the Faust agents do (agents/capture/agent.py, agents/scoring/agent.py),
minus Faust: decode with the codec, ``capture.rules.to_lead_event``, the lead event encoded as on
the wire, ``scoring.reorder.apply_event`` on the lead's state (``LeadState.to_dict`` as orjson, in
Quix's RocksDB store, changelogged, keyed by lead id), outputs encoded with ``codec.encode_output``
and produced; anonymous page views wait in their visitor's state until a form links the visitor.

Keys: an input keyed by its lead (or visitor) and on that key's partition is scored in place, as
``Pipeline.hand_off`` does; any other is re-keyed through the peer's internal topic, as capture
does through the lead events topic, and so are visitor links and released page views. Quix state
is per message key within a partition, so the inputs and the internal topic are one concatenated
dataframe (one store); Quix's producer partitions with murmur2, as aiokafka's does.

Not mirrored: Prometheus counters, the decay-review due index and its sweeper (reviews come due
days after the events, not within a run), erasure requests.

``python -m leadflow.bench.quix_peer N SINK INTERNAL RESULT_JSON`` runs it (LEADFLOW_* from the
environment); ``leadflow.bench.floors.quix_peer`` runs that as a child process.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agents.capture.agent import SUBJECTS
from agents.capture.exceptions import Rejected
from agents.capture.rules import CaptureLimits, to_lead_event
from agents.domain import wire
from agents.domain.events import LeadEvent, backfill_requested
from agents.domain.identity import visitor_key
from agents.routing.priority import priority_policy
from agents.scoring import reorder, rules
from agents.scoring.outputs import VisitorLinked
from agents.scoring.state import LeadState, VisitorState
from leadflow.simulator.harness import HarnessError
from streams.app import partition_for
from streams.codec import Codec, DecodeError
from streams.connections import librdkafka_client_config
from streams.consume import Meta
from streams.deadletter import PROCESSING_ERROR, dead_letter_message
from streams.settings import Settings
from streams.topic_names import TopicNames
from streams.topics import KAFKA_DEFAULT_MAX_MESSAGE_BYTES

INSTALL_HINT = "pip install -e '.[bench]'"


def quix_missing() -> str | None:
    """Why the peer cannot run here (one line), or None."""
    if importlib.util.find_spec("quixstreams") is None:
        return f"quixstreams is not installed ({INSTALL_HINT})"
    return None


@dataclass(frozen=True, slots=True)
class Send:
    """A record to produce: to the peer's internal topic, or to the sink (an output)."""

    internal: bool
    key: bytes
    value: bytes


class PeerRules:
    """capture + scoring for one record, as the Faust agents call the rules. ``state``: the
    record key's store (``get(name)`` / ``set(name, value)``; Quix's State, or a dict per key)."""

    def __init__(self, settings: Settings, codec: Codec, configs: Any, *, clock: Callable[[], float] = time.time):
        self.settings, self.codec, self.clock = settings, codec, clock
        self.limits = CaptureLimits.from_settings(settings)
        self.model, self.dispositions = configs.scoring, configs.sla.dispositions
        self.priority = priority_policy(configs.routing)
        self.window = reorder.ReorderWindow.from_seconds(settings.reorder_window_s, settings.live_event_bound_s)
        self.read = wire.reader(LeadEvent, wire.VisitorLinked)
        names = TopicNames.from_settings(settings)
        self.subject_of = {getattr(names, field): subject for field, subject in SUBJECTS.items()}
        self.room = KAFKA_DEFAULT_MAX_MESSAGE_BYTES - settings.dead_letter_margin_bytes

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def process(self, meta: Meta, state: Any) -> list[Send]:
        out: list[Send] = []
        try:
            subject = self.subject_of.get(meta.topic)
            if subject is None:
                self._internal(meta.value or b"", state, out)
            else:
                self._capture(subject, meta, state, out)
        except (DecodeError, Rejected, wire.UnknownMessage) as exc:
            out.append(self._dead_letter(meta, exc.reason_code, exc.detail))
        except Exception as exc:  # as streams.consume: a bug parks the record, the partition goes on
            out.append(self._dead_letter(meta, PROCESSING_ERROR, f"{type(exc).__name__} in quix peer"))
        return out

    def _capture(self, subject: str, meta: Meta, state: Any, out: list[Send]) -> None:
        raw = meta.value or b""
        record, encoding = self.codec.decode_input(subject, raw, max_bytes=self.settings.max_message_bytes)
        now = self.now_ms()
        event = to_lead_event(
            subject,
            record,
            encoding,
            raw=raw,
            received_at_ms=meta.timestamp_ms or now,
            now_ms=now,
            limits=self.limits,
            backfill=backfill_requested(meta.headers),
        )
        payload = wire.encode_lead_event(event)
        key = event.lead_id.encode() if event.lead_id is not None else visitor_key(event.visitor_id or "")
        if key == meta.key and partition_for(key, self.settings.topic_partitions) == meta.partition:
            self._internal(payload, state, out)  # already where the re-keyed record would go
        else:
            out.append(Send(True, key, payload))

    def _internal(self, payload: bytes, state: Any, out: list[Send]) -> None:
        message = self.read(payload)
        if isinstance(message, LeadEvent) and message.lead_id is not None:
            self._score(message, state, out)
        else:
            self._buffer_visitor(message, state, out)

    def _score(self, event: LeadEvent, state: Any, out: list[Send]) -> None:
        raw = state.get("lead")
        lead = LeadState.from_dict(raw) if raw else None
        new, outputs = reorder.apply_event(
            lead,
            event,
            self.model,
            now_ms=self.now_ms(),
            window=self.window,
            dedup_window=self.settings.dedup_window,
            dispositions=self.dispositions,
            priority=self.priority,
        )
        if new is lead:  # a duplicate
            return
        for o in outputs:  # outputs before the state write, as the agent does
            if isinstance(o, VisitorLinked):
                link = wire.VisitorLinked(visitor_id=o.visitor_id, lead_id=o.lead_id)
                out.append(Send(True, visitor_key(o.visitor_id), wire.encode(link)))
            else:
                value = self.codec.encode_output(o.subject, o.record, self.settings.output_format)
                out.append(Send(False, o.key.encode(), value))
        state.set("lead", new.to_dict())  # Quix's store serializes values with orjson

    def _buffer_visitor(self, message: Any, state: Any, out: list[Send]) -> None:
        raw = state.get("visitor")
        vstate = VisitorState.from_dict(raw) if raw else None
        if isinstance(message, wire.VisitorLinked):
            vstate, forwards = rules.link_visitor(vstate, message.lead_id, visitor_id=message.visitor_id)
        else:
            vstate, forwards = rules.apply_visitor_event(
                vstate, message, self.model, max_buffered=self.settings.visitor_buffer_max
            )
        for forward in forwards:
            out.append(Send(True, (forward.lead_id or "").encode(), wire.encode_lead_event(forward)))
        state.set("visitor", vstate.to_dict())

    def _dead_letter(self, meta: Meta, reason_code: str, reason: str) -> Send:
        fmt = self.settings.output_format
        key, payload = dead_letter_message(
            meta,
            reason_code,
            reason,
            failed_at_ms=self.now_ms(),
            room=self.room,
            encode=lambda r: self.codec.encode_output("dead_letter", r, fmt),
        )
        return Send(False, key, payload)


def figures(events: int, seconds: float, cpu_s: float, cpu_s_with_start: float) -> dict[str, Any]:
    """The peer's figures, shaped as the floors' (events/s, per CPU-second)."""
    return {
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds, 1) if seconds > 0 else None,
        "cpu_s": round(cpu_s, 2),
        "events_per_cpu_s": round(events / cpu_s, 1) if cpu_s > 0 else None,
        # Process start included, as the pipeline's worker CPU is (imports, group join).
        "worker_cpu_s": round(cpu_s_with_start, 2),
        "events_per_worker_cpu_s": round(events / cpu_s_with_start, 1) if cpu_s_with_start > 0 else None,
    }


def run_peer(settings: Settings, events: int, sink: str, internal: str) -> dict[str, Any]:
    """Run the Quix application until ``events`` input records and every internal record they
    caused are processed; returns its figures (measured from the first record processed)."""
    from quixstreams import Application, message_context
    from quixstreams.kafka.configuration import ConnectionConfig
    from quixstreams.models.serializers import Serializer

    from leadflow.compose import load_configs
    from streams.app import build_codec

    class SendValue(Serializer):
        def __call__(self, value: Send, ctx: Any) -> bytes:
            return value.value

    peer = PeerRules(settings, build_codec(settings, register=False), load_configs(settings))
    inputs = set(peer.subject_of)
    seen = {"inputs": 0, "internal": 0, "internal_sent": 0, "outputs": 0}
    started: list[float] = []

    def processed(topic: str, partition: int, offset: int) -> None:
        if not started:
            started.extend((time.monotonic(), time.process_time()))
        seen["inputs" if topic in inputs else "internal"] += 1
        if seen["inputs"] >= events and seen["internal"] >= seen["internal_sent"]:
            started.extend((time.monotonic(), time.process_time()))
            app.stop()

    app = Application(
        broker_address=ConnectionConfig.from_librdkafka_dict(librdkafka_client_config(settings)),
        consumer_group=settings.app_id,
        auto_offset_reset="earliest",
        commit_interval=settings.broker_commit_interval_s,  # as the Faust worker commits
        state_dir=str(Path(settings.data_dir) / "quix-state"),
        on_message_processed=processed,
        loglevel="WARNING",
    )
    raw: dict[str, Any] = {"key_deserializer": "bytes", "value_deserializer": "bytes"}
    out: dict[str, Any] = {**raw, "key_serializer": "bytes", "value_serializer": SendValue()}
    internal_topic, sink_topic = app.topic(internal, **out), app.topic(sink, **out)
    # One dataframe, so one state store: a lead's state whether its record came in or was re-keyed.
    sdf = app.dataframe(internal_topic)
    for name in TopicNames.from_settings(settings).inputs():
        sdf = sdf.concat(app.dataframe(app.topic(name, **raw)))

    def step(value: bytes, key: bytes, timestamp: int, headers: Any, state: Any) -> list[Send]:
        ctx = message_context()
        sends = peer.process(Meta(ctx.topic, ctx.partition, ctx.offset, key, value, timestamp, headers), state)
        internal_sent = sum(s.internal for s in sends)
        seen["internal_sent"] += internal_sent
        seen["outputs"] += len(sends) - internal_sent
        return sends

    sdf = sdf.apply(step, stateful=True, metadata=True, expand=True)
    sdf.to_topic(lambda value, *_: internal_topic if value.internal else sink_topic, key=lambda value: value.key)
    app.run()
    if len(started) < 4:
        raise HarnessError(f"the Quix peer stopped after {seen['inputs']} of {events} input records")
    t0, cpu0, t1, cpu1 = started[:4]
    result = figures(seen["inputs"], t1 - t0, cpu1 - cpu0, cpu1)
    result.update(internal_records=seen["internal"], outputs=seen["outputs"])
    return result


if __name__ == "__main__":
    from streams.settings import load_settings

    n, sink_name, internal_name, out_file = sys.argv[1:5]
    figures_ = run_peer(load_settings(), int(n), sink_name, internal_name)
    Path(out_file).write_text(json.dumps(figures_))
