"""No record is fetched, dropped and then skipped around a rebalance (two races in faust-streaming 0.15.3).

1. Stream partitions resume only while the flow is stopped (a start-up race).

After table recovery Faust resumes the stream partitions, seeks them to their committed offsets,
then resumes flow control, which clears every stream queue (``Recovery.on_recovery_completed``,
and ``Recovery._resume_streams`` when nothing needs restoring). The flow is still *active* at
that point: it was resumed to read the changelogs. So the fetch loop starts delivering stream
records as soon as the partitions are resumed, while the seek is in flight:

- records of a batch fetched before the seek are still delivered after it, and each moves the
  partition's read offset (``Consumer._read_offset``) past itself;
- the queue clear then throws away the ones the agent had not taken yet;
- the seek makes the fetcher read them again, and the fetch loop drops them as already read.

They are never processed. Faust's commit treats a one-offset hole right after the committed
offset as no hole (``Consumer._new_offset``), so the commit can then move past them for good;
a wider hole stalls the partition's commits until the next restart. The fault suite's kill -9
scenario lost 1-3 leads per run this way: the first records published to each input partition
while the worker restarted (docs/reliability.md).

:func:`install` stops the flow (and flow control) before Faust's own code runs, and yields until
the fetch loop has seen it: nothing is delivered between resuming the partitions, the seek and
the queue clear, and the first record delivered afterwards is the one at the committed offset.

2. "Seek to committed" rewinds every partition, the never-committed ones included.

Faust drops records it has fetched whenever the flow stops under them (a rebalance, a recovery):
the rest of a batch when the flow stops mid-iteration, a whole batch that returns while it is
stopped (``Consumer.getmany``: "getmany called while flow not active"), and the agents' queues
(``flow_control.clear``). It relies on ``perform_seek`` to read them again. But aiokafka's
``seek_to_committed`` seeks only partitions with a committed offset above 0 and leaves any other
where the fetcher left it, past the dropped records. A fetch in flight during a rebalance can
return such records: it waits up to a second with the live set of active partitions, which the
recovery changes under it. So the first records of a partition nothing was committed on yet were
lost for good, while the worker went on with the rest. Seen in ``test_broker_outage``: the
broker came back, the consumer group rebalanced, and the one form submit published then was
captured but its lead event, the first record of its lead-events partition, was never scored
(2 of 4 fresh-clone CI runs; 2 in about 30 local runs under load).

:func:`install` makes Faust's ``seek_to_committed`` seek a partition without a committed offset
to its beginning, where the group starts reading one (``consumer_auto_offset_reset="earliest"``,
set by :func:`streams.app.faust_app`): records read again are deduplicated downstream, as after
any redelivery.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from faust.tables.recovery import Recovery

_INSTALLED = "_leadflow_resume_with_flow_stopped"
_SEEK_INSTALLED = "_leadflow_seek_uncommitted_to_beginning"


async def stop_flow(app: Any, *, settle_s: float) -> None:
    """Stop delivering records, and give the fetch loop time to leave any batch it is iterating.

    ``Consumer.stop_flow`` makes the loop break out of a fetched batch before its next record and
    cancels a delivery that waits on flow control; that happens on the loop's next turns, hence
    the short wait (``settle_s``) before the caller moves read offsets with a seek."""
    app.consumer.stop_flow()
    app.flow_control.suspend()
    await asyncio.sleep(settle_s)


def _with_flow_stopped(original: Callable[..., Awaitable[None]], settle_s: float) -> Callable[..., Awaitable[None]]:
    @functools.wraps(original)
    async def resume(self: Recovery, generation_id: int = 0) -> None:
        await stop_flow(self.app, settle_s=settle_s)
        await original(self, generation_id)

    return resume


async def seek_all_to_committed(
    consumer: Any, is_stream: Callable[[Any], bool] = lambda tp: True
) -> Mapping[Any, int | None]:
    """``consumer.seek_to_committed()`` (an ``aiokafka.AIOKafkaConsumer``), then every assigned
    stream partition it left alone (no committed offset, or 0) to its beginning. ``is_stream``
    keeps the changelog partitions out: the group commits nothing on them, and Faust positions
    them itself (a standby would read its whole changelog again). Returns the committed
    offsets, as aiokafka does (Faust reads them)."""
    committed: Mapping[Any, int | None] = await consumer.seek_to_committed()
    uncommitted = [tp for tp, offset in committed.items() if not offset and is_stream(tp)]
    if uncommitted:
        # Not seek_to_beginning: that leaves the position unset until the broker answers, and
        # Faust's livelock check reads it meanwhile (an AssertionError that stops the worker).
        for tp, offset in (await consumer.beginning_offsets(uncommitted)).items():
            consumer.seek(tp, offset)
    return committed


async def _seek_to_committed_or_beginning(self: Any) -> Mapping[Any, int | None]:
    # On the consumer's own thread, as Faust's original does; ``self.consumer``: Faust's Consumer.
    faust_consumer = self.consumer
    committed: Mapping[Any, int | None] = await self.call_thread(
        seek_all_to_committed, self._ensure_consumer(), lambda tp: not faust_consumer._is_changelog_tp(tp)
    )
    return committed


def install(*, settle_s: float = 0.2) -> None:
    """Patch ``Recovery`` and Faust's aiokafka consumer thread once per process (idempotent)."""
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    if not getattr(AIOKafkaConsumerThread, _SEEK_INSTALLED, False):
        AIOKafkaConsumerThread.seek_to_committed = _seek_to_committed_or_beginning  # type: ignore[method-assign,assignment]  # the patch itself
        setattr(AIOKafkaConsumerThread, _SEEK_INSTALLED, True)
    if getattr(Recovery, _INSTALLED, False):
        return
    Recovery.on_recovery_completed = _with_flow_stopped(  # type: ignore[method-assign,assignment]  # the patch itself
        Recovery.on_recovery_completed, settle_s
    )
    Recovery._resume_streams = _with_flow_stopped(Recovery._resume_streams, settle_s)  # type: ignore[method-assign,assignment]
    setattr(Recovery, _INSTALLED, True)
