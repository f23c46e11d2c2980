"""Per-key mutual exclusion between the coroutines of one event loop.

Two coroutines of a worker may act on the same lead: an agent reading a topic, and another
agent handing that lead's record over in-process (:meth:`streams.app.Pipeline.follow_emitted`).
Each holds the lead's key while it reads, decides and writes, so one never writes a table
entry the other read before it changed. A key's lock exists only while held or awaited.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class KeyedLocks:
    """``async with locks.hold(key)`` waits its turn; :meth:`held` lets a caller that must not
    wait go another way instead."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._users: dict[Hashable, int] = {}

    def held(self, key: Hashable) -> bool:
        """True while someone holds (or waits for) ``key``."""
        return key in self._locks

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        # A free key is taken without suspending (asyncio.Lock.acquire on an unlocked lock),
        # so held() then acquire cannot be overtaken by another coroutine.
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                del self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)
