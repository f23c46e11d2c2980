"""A commit never runs ahead of the changelog: Faust's producer buffer flushed for real.

Why a patch. Table writes (``table[key] = value``) are synchronous, so Faust queues their
changelog records in ``ProducerBuffer`` and a background task hands them to aiokafka one by one.
Before committing the input offsets, the consumer calls ``producer.flush()``, which first drains
that buffer and then flushes aiokafka. In faust-streaming 0.11-0.15 the drain
(``ProducerBuffer.flush_atmost``) gives up in two cases and lets the commit go ahead:

* it waits 0.1 s for the next record to be handed over, and returns on timeout, with records
  still queued (a busy 2-core machine, or aiokafka waiting for metadata or buffer space);
* it looks only at the queue, so the record the background task has taken but not yet handed to
  aiokafka is in neither place, and neither flush waits for it.

Either way the input's offset is committed while the state change it caused is still in this
process's memory. A ``kill -9`` at that moment loses the change for good: the restarted worker
restores the older state from the changelog and does not re-read the input. Seen as one lead
with 39 of its 40 events after a kill -9 in ``test_kill9_mid_stream_...`` (1 run in 4) and as
leads "never scored" in the chaos suite's kill -9 scenario.

:func:`install` makes ``ProducerBuffer.flush`` wait until every record queued before the call
has been handed to aiokafka, the one between the queue and aiokafka included (the counts are
kept by wrapping ``_send_pending``; records queued during the flush belong to later offsets,
which the commit does not cover: Faust fixes the offsets before it flushes). It keeps the
original's one guard: a producer that is not running raises instead of waiting forever. A slow
drain is logged once per ``warn_after_s``, not per record. ``wait_until_ebb`` (the back-pressure
call with a message bound) is left as it is: it does not precede a commit.

It also keeps the changelog from getting ahead of the outputs. An agent sends a record's outputs
before it writes its state, but the two go to different partitions, which on a cluster are on
different brokers: without more, a crash can leave the state change durable and its outputs
not, and the redelivered input is then skipped as already applied. So a changelog record is
handed to the client only once every output sent before it (:func:`track_output`, called by
``streams.app.Pipeline.emit``) is acknowledged. The stream does not wait for it; only the
changelog does (and the commit, which waits for the changelog). "Before it" is taken when the
record is queued (``ProducerBuffer.put``): waiting for every output unacknowledged at *send*
time made each changelog record wait for outputs sent after it, one produce round trip per
record under steady load, which filled the producer buffer and stalled the streams
(``leadflow bench``: 17% fewer events/s and a p99 event->assignment of 4.3 s instead of 0.65 s).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faust.types.tuples import FutureMessage

log = logging.getLogger(__name__)

_INSTALLED = "_leadflow_full_flush"
WAIT_STEP_S = 0.5  # how often the drain re-checks when no record was handed over meanwhile
_unacked_outputs: set[asyncio.Future[Any]] = set()  # outputs sent and not yet acknowledged


def track_output(fut: asyncio.Future[Any]) -> None:
    """An output record handed to the client: changelog records queued after it wait for its ack."""
    if not fut.done():
        _unacked_outputs.add(fut)
        fut.add_done_callback(_unacked_outputs.discard)


def outputs_unacknowledged() -> tuple[asyncio.Future[Any], ...]:
    """The outputs sent and not yet acknowledged, now: what a changelog record queued now waits for."""
    return tuple(_unacked_outputs)


async def outputs_acknowledged(outputs: tuple[asyncio.Future[Any], ...]) -> None:
    """Until each of ``outputs`` is acknowledged (or failed: the client's own retries are
    exhausted by then, and waiting longer would block the changelog forever)."""
    pending = [f for f in outputs if not f.done()]
    if pending:
        await asyncio.wait(pending)


def install(*, warn_after_s: float = 10.0) -> None:
    """Patch ``faust.transport.producer.ProducerBuffer`` for this process (idempotent)."""
    from faust.transport.producer import ProducerBuffer

    if getattr(ProducerBuffer, _INSTALLED, False):
        return
    original_put = ProducerBuffer.put
    original_send_pending = ProducerBuffer._send_pending

    def put(self: Any, fut: FutureMessage) -> None:
        # Carried by the record itself: nothing to clean up if it is never sent.
        fut._leadflow_after = outputs_unacknowledged() if _unacked_outputs else ()  # type: ignore[attr-defined]
        original_put(self, fut)

    # self: Any, not ProducerBuffer - these methods give it an attribute of ours.
    async def _send_pending(self: Any, fut: FutureMessage) -> None:
        # Counted before the first await: the background task calls this in the same step in
        # which it took the record off the queue, so a flush never sees it in neither place.
        self._leadflow_taken = getattr(self, "_leadflow_taken", 0) + 1
        try:
            earlier_outputs = getattr(fut, "_leadflow_after", ())
            if earlier_outputs:
                await outputs_acknowledged(earlier_outputs)  # the changelog never ahead of the outputs
            await original_send_pending(self, fut)
        finally:
            self._leadflow_handed = getattr(self, "_leadflow_handed", 0) + 1

    async def flush(self: Any) -> None:
        """Return only when every changelog record queued before the call has been handed to
        the client. Records come off the queue one at a time, in order (``_handle_pending``), so
        those are the next ``size`` after the ones taken so far. Not "until the queue is empty":
        under steady load it never is, and the commit then waited 5-25 s, during which Faust's
        fetcher stops delivering when it commits inline (issue 14: "Timer commit is overlapping")."""
        started = last_warned = time.monotonic()
        target = getattr(self, "_leadflow_taken", 0) + self.size
        while getattr(self, "_leadflow_handed", 0) < target:
            if self.state != "running":
                raise RuntimeError("Cannot flush: Producer not Running")
            self.message_sent.clear()
            try:
                await asyncio.wait_for(self.message_sent.wait(), timeout=WAIT_STEP_S)
            except asyncio.TimeoutError:
                now = time.monotonic()
                if now - last_warned >= warn_after_s:
                    last_warned = now
                    log.warning(
                        "the offset commit has waited %.0f s for %d changelog records to be handed to Kafka",
                        now - started,
                        target - getattr(self, "_leadflow_handed", 0),
                    )

    ProducerBuffer.put = put  # type: ignore[method-assign]  # the patch itself
    ProducerBuffer._send_pending = _send_pending  # type: ignore[method-assign]
    ProducerBuffer.flush = flush  # type: ignore[method-assign]
    setattr(ProducerBuffer, _INSTALLED, True)
