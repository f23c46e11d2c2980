"""Stream partitions are resumed and seeked only while the flow is stopped (streams/faust_recovery.py).

The fakes record the flow state at each step of Faust's own ``Recovery`` code; against
unpatched faust-streaming 0.15.3 the partitions are resumed with the flow active, and these
tests fail.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from faust.tables.recovery import Recovery

from streams import faust_recovery


class _Consumer:
    def __init__(self, steps: list[str]) -> None:
        self.steps, self.flow_active = steps, True  # active: resumed earlier to read the changelogs

    def stop_flow(self) -> None:
        self.flow_active = False
        self.steps.append("stop_flow")

    def resume_flow(self) -> None:
        self.flow_active = True
        self.steps.append("resume_flow")

    def assignment(self) -> set[str]:
        return {"in.form-submits/0", "lead_to_state-changelog/0"}

    def resume_partitions(self, tps) -> None:
        self.steps.append(f"resume_partitions flow_active={self.flow_active}")

    async def perform_seek(self) -> None:
        self.steps.append(f"seek flow_active={self.flow_active}")


class _FlowControl:
    def __init__(self, steps: list[str]) -> None:
        self.steps = steps

    def suspend(self) -> None:
        self.steps.append("flow_control.suspend")

    def resume(self) -> None:  # Faust's resume clears every stream queue
        self.steps.append("flow_control.resume (queues cleared)")


class _Noop:
    def __getattr__(self, name):
        def call(*args, **kwargs):
            return None

        return call


class _AsyncNoop:
    def __getattr__(self, name):
        async def call(*args, **kwargs):
            return None

        return call


def _recovery(steps: list[str]) -> SimpleNamespace:
    consumer = _Consumer(steps)
    app = SimpleNamespace(
        consumer=consumer,
        flow_control=_FlowControl(steps),
        conf=SimpleNamespace(broker_request_timeout=5.0),
        consumer_generation_id=1,
        on_rebalance_complete=_AsyncNoop(),
        _fetcher=_AsyncNoop(),
        assignor=SimpleNamespace(assigned_standbys=lambda: set()),
        on_rebalance_end=lambda: None,
    )

    async def _wait(coro, timeout=None):
        await coro

    return SimpleNamespace(
        app=app,
        log=_Noop(),
        tables=SimpleNamespace(values=lambda: [], on_actives_ready=lambda: None, on_standbys_ready=lambda: None),
        completed=asyncio.Event(),
        _set_recovery_ended=lambda: None,
        _is_changelog_tp=lambda tp: "changelog" in tp,
        _wait=_wait,
    )


@pytest.fixture(scope="module", autouse=True)
def _installed():
    faust_recovery.install(settle_s=0.0)


@pytest.mark.parametrize("method", ["on_recovery_completed", "_resume_streams"])
def test_partitions_resume_and_seek_with_the_flow_stopped(method: str) -> None:
    steps: list[str] = []
    asyncio.run(getattr(Recovery, method)(_recovery(steps), 1))

    assert steps.index("stop_flow") < steps.index("resume_partitions flow_active=False")
    assert "resume_partitions flow_active=True" not in steps
    assert "seek flow_active=False" in steps
    # the queues are cleared after the seek, and records flow again only after that
    assert steps.index("seek flow_active=False") < steps.index("flow_control.resume (queues cleared)")
    assert steps[-1] == "resume_flow"


def test_install_is_idempotent() -> None:
    patched = Recovery.on_recovery_completed
    faust_recovery.install()
    assert Recovery.on_recovery_completed is patched


class _AIOKafkaConsumer:
    """What seek_all_to_committed calls on aiokafka's consumer: committed offsets, the seeks."""

    def __init__(self, committed: dict[str, int | None]) -> None:
        self.committed, self.to_beginning = committed, []

    async def seek_to_committed(self) -> dict[str, int | None]:
        return dict(self.committed)

    async def beginning_offsets(self, tps: list[str]) -> dict[str, int]:
        return {tp: 3 for tp in tps}  # the log starts at 3 (older records deleted)

    def seek(self, tp: str, offset: int) -> None:  # sets the position at once (no reset pending)
        self.to_beginning.append((tp, offset))


def test_faust_seek_to_committed_rewinds_never_committed_stream_partitions_only() -> None:
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    aiokafka_consumer = _AIOKafkaConsumer(
        {"in.form-submits/0": 7, "in.form-submits/1": None, "lead-events/0": 0, "lead_to_state-changelog/0": None}
    )

    async def call_thread(fn, *args):  # Faust runs it on the consumer's thread; here, inline
        return await fn(*args)

    thread = SimpleNamespace(
        consumer=SimpleNamespace(_is_changelog_tp=lambda tp: "changelog" in tp),
        call_thread=call_thread,
        _ensure_consumer=lambda: aiokafka_consumer,
    )
    committed = asyncio.run(AIOKafkaConsumerThread.seek_to_committed(thread))

    assert committed == aiokafka_consumer.committed  # what Faust's perform_seek reads, unchanged
    assert sorted(aiokafka_consumer.to_beginning) == [("in.form-submits/1", 3), ("lead-events/0", 3)]
