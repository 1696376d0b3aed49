"""Request slots: a resizable semaphore whose size the controller sets, and the slot context."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType

__all__ = ["SlotContext", "SlotPool", "SlotTicket"]


class SlotPool:
    """Up to :attr:`limit` holders at once; the limit may change at any moment.

    Raising the limit wakes waiters at once (first come, first served); lowering it
    never interrupts a holder: the pool just hands out no slot until enough have been
    returned. A waiter cancelled after it was handed a slot gives the slot back.
    """

    def __init__(self, limit: int):
        if limit < 1:
            raise ValueError(f"the slot limit must be at least 1, not {limit}")
        self._limit = limit
        self._in_use = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def limit(self) -> int:
        """How many slots may be held at once."""
        return self._limit

    @property
    def in_use(self) -> int:
        """How many slots are held now."""
        return self._in_use

    @property
    def waiting(self) -> int:
        """How many callers wait for a slot."""
        return sum(1 for waiter in self._waiters if not waiter.done())

    def resize(self, limit: int) -> None:
        """Set the limit (at least 1) and wake as many waiters as it now allows."""
        if limit < 1:
            raise ValueError(f"the slot limit must be at least 1, not {limit}")
        self._limit = limit
        self._hand_out()

    async def acquire(self) -> None:
        """Wait for a slot and take it."""
        if self._in_use < self._limit and not self.waiting:
            self._in_use += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as the caller was cancelled
            else:
                waiter.cancel()
            raise

    def release(self) -> None:
        """Return a slot."""
        if self._in_use <= 0:
            raise RuntimeError("release() without a matching acquire()")
        self._in_use -= 1
        self._hand_out()

    def _hand_out(self) -> None:
        while self._waiters and self._in_use < self._limit:
            waiter = self._waiters.popleft()
            if waiter.done():
                continue
            self._in_use += 1
            waiter.set_result(None)


class SlotTicket:
    """A held slot; report acknowledged bytes with :meth:`add` before leaving it."""

    __slots__ = ("bytes", "started")

    def __init__(self, started: float):
        self.started = started
        self.bytes = 0

    def add(self, count: int) -> None:
        """``count`` more bytes were acknowledged (or arrived) for this request."""
        self.bytes += count


class SlotContext:
    """``async with``: take a slot on entry, hand it back (with the outcome) on exit."""

    def __init__(
        self,
        enter: Callable[[], Awaitable[SlotTicket]],
        leave: Callable[[SlotTicket, BaseException | None], None],
    ):
        self._enter = enter
        self._leave = leave
        self._ticket: SlotTicket | None = None

    async def __aenter__(self) -> SlotTicket:
        self._ticket = await self._enter()
        return self._ticket

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._ticket is not None, "a slot left without being entered"
        self._leave(self._ticket, exc)
