"""streams.keyed_lock: one holder per key, others wait their turn, free keys leave nothing behind."""

from __future__ import annotations

import asyncio

from streams.keyed_lock import KeyedLocks


def test_holders_of_one_key_take_turns_and_other_keys_do_not_wait():
    locks = KeyedLocks()
    order: list[str] = []

    async def worker(key: str, name: str, pause: float) -> None:
        async with locks.hold(key):
            order.append(f"{name} in")
            await asyncio.sleep(pause)
            order.append(f"{name} out")

    async def main() -> None:
        await asyncio.gather(worker("a", "first", 0.02), worker("a", "second", 0), worker("b", "other", 0))

    asyncio.run(main())
    assert order.index("first out") < order.index("second in")
    assert order.index("other out") < order.index("first out")  # key b never waited for key a


def test_held_is_true_only_while_a_key_is_held_or_awaited():
    locks = KeyedLocks()
    seen: list[bool] = []

    async def main() -> None:
        assert not locks.held("a")
        async with locks.hold("a"):
            seen.append(locks.held("a"))
            seen.append(locks.held("b"))
        seen.append(locks.held("a"))

    asyncio.run(main())
    assert seen == [True, False, False]
    assert len(locks) == 0


def test_a_free_key_is_taken_without_yielding_to_another_coroutine():
    """held() then hold() cannot be overtaken: taking a free key does not suspend."""
    locks = KeyedLocks()
    ran: list[str] = []

    async def other() -> None:
        ran.append("other")

    async def main() -> None:
        task = asyncio.create_task(other())
        async with locks.hold("a"):
            ran.append("holder")  # the other task has had no turn yet
        await task

    asyncio.run(main())
    assert ran == ["holder", "other"]


def test_an_error_inside_releases_the_key():
    locks = KeyedLocks()

    async def main() -> None:
        try:
            async with locks.hold("a"):
                raise ValueError("boom")
        except ValueError:
            pass
        async with locks.hold("a"):
            pass

    asyncio.run(main())
    assert len(locks) == 0
