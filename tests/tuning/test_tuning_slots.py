"""The resizable slot pool: the limit holds, raising wakes waiters in order, lowering
never interrupts a holder, and a cancelled waiter never leaks a slot."""

from __future__ import annotations

import asyncio

import pytest

from kore_models.transfer.pacing.slots import SlotPool
from tests.support.tuning import run_virtual


def test_never_more_holders_than_the_limit_and_first_come_first_served() -> None:
    async def main() -> tuple[int, list[int]]:
        pool = SlotPool(3)
        holding = 0
        peak = 0
        order: list[int] = []

        async def user(index: int) -> None:
            nonlocal holding, peak
            await pool.acquire()
            order.append(index)
            holding += 1
            peak = max(peak, holding)
            await asyncio.sleep(1.0)
            holding -= 1
            pool.release()

        await asyncio.gather(*(user(i) for i in range(10)))
        return peak, order

    peak, order = run_virtual(main)
    assert peak == 3
    assert order == list(range(10))


def test_raising_the_limit_wakes_waiters_at_once() -> None:
    async def main() -> int:
        pool = SlotPool(1)
        await pool.acquire()
        waiters = [asyncio.ensure_future(pool.acquire()) for _ in range(4)]
        await asyncio.sleep(0)
        assert pool.waiting == 4
        pool.resize(4)
        await asyncio.sleep(0)
        assert sum(w.done() for w in waiters) == 3
        return pool.in_use

    assert run_virtual(main) == 4


def test_lowering_the_limit_lets_holders_finish_and_then_holds_the_new_limit() -> None:
    async def main() -> list[int]:
        pool = SlotPool(4)
        for _ in range(4):
            await pool.acquire()
        pool.resize(2)
        waiter = asyncio.ensure_future(pool.acquire())
        seen = []
        for _ in range(3):
            pool.release()
            await asyncio.sleep(0)
            seen.append(pool.in_use)
        assert waiter.done()
        return seen

    # 3 held after the first release (no slot handed out: 3 > 2); 2 held; then the waiter
    assert run_virtual(main) == [3, 2, 2]


def test_a_cancelled_waiter_leaks_no_slot() -> None:
    async def main() -> int:
        pool = SlotPool(1)
        await pool.acquire()
        waiter = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0)
        pool.release()  # hands the slot to the waiter ...
        waiter.cancel()  # ... which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await waiter
        return pool.in_use

    assert run_virtual(main) == 0


def test_misuse_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SlotPool(0)
    with pytest.raises(ValueError, match="at least 1"):
        SlotPool(1).resize(0)
    with pytest.raises(RuntimeError, match="without a matching"):
        SlotPool(1).release()
