"""The pause gate: a Retry-After holds every new request of the client for that long, is
capped, never shortened, and tells the controller once per error."""

from __future__ import annotations

import asyncio

import pytest

from kore_models.errors import RateLimitError
from kore_models.transfer.pacing import ConcurrencyController, PauseGate, TuningConfig
from tests.support.tuning import run_virtual, virtual_clock


def test_new_requests_wait_for_the_retry_after() -> None:
    async def main() -> list[float]:
        clock = virtual_clock()
        gate = PauseGate(clock=clock)
        start = clock()
        gate.pause(2.5)
        assert not gate.is_open
        assert gate.remaining == pytest.approx(2.5)
        passed: list[float] = []

        async def request() -> None:
            await gate.wait()
            passed.append(clock() - start)

        await asyncio.gather(*(request() for _ in range(5)))
        assert gate.is_open
        return passed

    assert run_virtual(main) == [pytest.approx(2.5)] * 5


def test_a_later_pause_extends_and_an_earlier_one_does_not_shorten() -> None:
    async def main() -> tuple[float, int, float]:
        clock = virtual_clock()
        gate = PauseGate(clock=clock)
        start = clock()
        gate.pause(1.0)
        waiting = asyncio.ensure_future(gate.wait())
        await asyncio.sleep(0.5)
        gate.pause(3.0)  # until 3.5
        gate.pause(0.1)  # until 0.6: no effect
        await waiting
        return clock() - start, gate.pauses, gate.paused_seconds

    waited, pauses, paused = run_virtual(main)
    assert waited == pytest.approx(3.5)
    assert pauses == 3
    assert paused == pytest.approx(3.5)


def test_pauses_are_capped() -> None:
    async def main() -> float:
        clock = virtual_clock()
        gate = PauseGate(cap=10.0, clock=clock)
        start = clock()
        gate.pause(86_400.0)
        await gate.wait()
        return clock() - start

    assert run_virtual(main) == pytest.approx(10.0)


def test_requests_in_flight_go_on_while_new_ones_wait() -> None:
    async def main() -> list[tuple[str, float]]:
        clock = virtual_clock()
        gate = PauseGate(clock=clock)
        controller = ConcurrencyController(fixed=4, gate=gate, clock=clock)
        start = clock()
        log: list[tuple[str, float]] = []

        async def old() -> None:
            async with controller.slot():
                await asyncio.sleep(1.0)
            log.append(("old done", clock() - start))

        async def new() -> None:
            await asyncio.sleep(0.2)
            async with controller.slot():
                log.append(("new started", clock() - start))

        running = asyncio.ensure_future(old())
        await asyncio.sleep(0.1)
        gate.pause(2.0)
        await asyncio.gather(running, new())
        return log

    (first, at_first), (second, at_second) = run_virtual(main)
    assert (first, second) == ("old done", "new started")
    assert at_first == pytest.approx(1.0)
    assert at_second == pytest.approx(2.1)


def test_a_slot_queued_before_the_pause_does_not_slip_through() -> None:
    async def main() -> float:
        clock = virtual_clock()
        gate = PauseGate(clock=clock)
        controller = ConcurrencyController(fixed=1, gate=gate, clock=clock)
        start = clock()
        started: list[float] = []

        async def holder() -> None:
            async with controller.slot():
                await asyncio.sleep(1.0)
                gate.pause(5.0)  # the queued request is handed the slot right now

        async def queued() -> None:
            async with controller.slot():
                started.append(clock() - start)

        await asyncio.gather(holder(), queued())
        return started[0]

    assert run_virtual(main) == pytest.approx(6.0)


def test_the_controller_counts_a_429_once_whether_it_sees_it_twice_or_not() -> None:
    async def main() -> tuple[int, int]:
        clock = virtual_clock()
        gate = PauseGate(clock=clock)
        controller = ConcurrencyController(TuningConfig(initial=16), gate=gate, clock=clock)
        error = RateLimitError("slow down", status_code=429, retry_after=1.0)
        with pytest.raises(RateLimitError):
            async with controller.slot():
                raise error
        gate.pause(1.0, source=error)  # the retry path honours the same 429
        first = controller.limit
        await asyncio.sleep(10)
        gate.pause(1.0, reason="Retry-After on a poll")  # a request without a slot
        return first, controller.limit

    assert run_virtual(main) == (8, 4)
