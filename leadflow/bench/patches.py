"""Prototyping hook: named code patches a bench worker applies before it starts
(``leadflow bench --patch NAME``, see ``leadflow.bench.worker``), to measure a change before
asking the owner of the code to make it. For measurement only."""

from __future__ import annotations

from collections.abc import Callable

PATCHES: dict[str, Callable[[], None]] = {}


def _patch(name: str):
    def register(fn: Callable[[], None]) -> Callable[[], None]:
        PATCHES[name] = fn
        return fn

    return register


@_patch("no_spinner")
def _no_spinner() -> None:
    """Faust's terminal spinner off (it sets the root logger to DEBUG at loglevel >= warn)."""
    import faust.worker

    original = faust.worker.Worker.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.spinner = None

    faust.worker.Worker.__init__ = init  # type: ignore[method-assign]


@_patch("big_producer_buffer")
def _big_producer_buffer() -> None:
    """Faust's changelog ProducerBuffer holds 100 messages before the stream stops to flush."""
    from faust.transport.producer import ProducerBuffer

    ProducerBuffer.max_messages = 2000
