"""Stream partitions resume only while the flow is stopped (a start-up race in faust-streaming 0.15.3).

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
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from faust.tables.recovery import Recovery

_INSTALLED = "_leadflow_resume_with_flow_stopped"


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


def install(*, settle_s: float = 0.2) -> None:
    """Patch ``Recovery`` once per process (idempotent)."""
    if getattr(Recovery, _INSTALLED, False):
        return
    Recovery.on_recovery_completed = _with_flow_stopped(  # type: ignore[method-assign,assignment]  # the patch itself
        Recovery.on_recovery_completed, settle_s
    )
    Recovery._resume_streams = _with_flow_stopped(Recovery._resume_streams, settle_s)  # type: ignore[method-assign,assignment]
    setattr(Recovery, _INSTALLED, True)
