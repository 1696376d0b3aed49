"""Tuning-suite helpers: an event loop on virtual time and a simulated network link.

``run_virtual(main)`` runs a coroutine on an asyncio loop whose clock jumps straight to the
next timer whenever nothing is ready, so a simulated minute takes milliseconds and every
run is exactly the same. :class:`Link` answers simulated requests the way the emulator's
network profiles do: latency per request, a per-connection rate, a shared total rate, and
a guard that answers 429 with Retry-After beyond a number of requests in flight.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kore_models.errors import RateLimitError
from kore_models.transfer.pacing import ConcurrencyController, PauseGate, retry_after_of

T = TypeVar("T")


class _FastForwardSelector(selectors.DefaultSelector):
    """A selector that never sleeps: a wait for the next timer advances the virtual clock."""

    loop: VirtualTimeLoop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if ready:
            return ready
        if timeout is None:
            raise RuntimeError("deadlock: every task waits and no timer is due")
        self.loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` is virtual and advances only when the loop is idle."""

    def __init__(self) -> None:
        selector = _FastForwardSelector()
        self._virtual_now = 1000.0
        super().__init__(selector)
        selector.loop = self

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        """Move the clock forward (never back)."""
        self._virtual_now += max(0.0, seconds)


def run_virtual(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` to completion on a fresh :class:`VirtualTimeLoop`."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in leftovers:
            task.cancel()
        if leftovers:
            loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        loop.close()


def virtual_clock() -> Callable[[], float]:
    """The running loop's clock (call inside ``run_virtual``)."""
    return asyncio.get_running_loop().time


class Link:
    """A simulated path to a server that shares its bandwidth fairly (processor sharing).

    ``per_connection`` and ``total`` are bytes per second (0 = unlimited; then
    ``unlimited_rate`` stands for the loopback speed); ``latency`` is added to each
    request; ``guard`` is the most requests the server serves at once (0 = no guard) and
    ``retry_after`` its hint in seconds for a request beyond it.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        per_connection: float = 0.0,
        total: float = 0.0,
        guard: int = 0,
        retry_after: float = 1.0,
        unlimited_rate: float = 1e9,
    ) -> None:
        self.latency = latency
        self.per_connection = per_connection
        self.total = total
        self.guard = guard
        self.retry_after = retry_after
        self.unlimited_rate = unlimited_rate
        self.in_flight = 0
        self.peak_in_flight = 0
        self.served = 0
        self.rejected = 0
        self._moving: dict[asyncio.Future[None], float] = {}
        self._stamp = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def rate_each(self) -> float:
        """Bytes per second each moving transfer gets now."""
        rates = [self.unlimited_rate]
        if self.per_connection:
            rates.append(self.per_connection)
        if self.total and self._moving:
            rates.append(self.total / len(self._moving))
        return min(rates)

    def _settle(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        moved = (now - self._stamp) * self.rate_each()
        self._stamp = now
        for waiter in list(self._moving):
            self._moving[waiter] -= moved
            if self._moving[waiter] <= 1e-6:
                del self._moving[waiter]
                if not waiter.done():
                    waiter.set_result(None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._moving:
            wait = min(self._moving.values()) / self.rate_each()
            self._timer = loop.call_later(max(wait, 1e-9), self._settle)

    async def request(self, size: int) -> None:
        """Move ``size`` bytes after the latency, or raise RateLimitError beyond the guard."""
        if self.guard and self.in_flight >= self.guard:
            self.rejected += 1
            await asyncio.sleep(0.001)
            raise RateLimitError(
                "too many chunks in flight", status_code=429, retry_after=self.retry_after
            )
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.latency)
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._settle()
            self._moving[waiter] = float(size)
            self._settle()
            await waiter
        finally:
            self.in_flight -= 1
        self.served += 1


@dataclass
class Transfer:
    """``count`` requests of ``size`` bytes sent by ``workers`` tasks through a controller."""

    controller: ConcurrencyController
    gate: PauseGate
    link: Link
    size: int = 16 * 1024 * 1024
    limits: list[int] = field(default_factory=list)
    seconds: float = 0.0

    async def run(self, count: int, workers: int = 32) -> float:
        """Send every request (a rejected one again); return the simulated seconds taken."""
        loop = asyncio.get_running_loop()
        todo = list(range(count))
        start = loop.time()

        async def worker() -> None:
            while todo:
                todo.pop()
                try:
                    async with self.controller.slot() as ticket:
                        self.limits.append(self.controller.limit)
                        await self.link.request(self.size)
                        ticket.add(self.size)
                except RateLimitError as exc:
                    todo.append(-1)
                    self.gate.pause(retry_after_of(exc) or 0.0, source=exc)

        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(worker())
        self.seconds = loop.time() - start
        return self.seconds
