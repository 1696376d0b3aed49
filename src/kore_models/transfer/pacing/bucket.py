"""The process-wide token bucket that caps upload plus download bytes per second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["TokenBucket"]

Sleep = Callable[[float], Awaitable[None]]


class TokenBucket:
    """At most ``rate`` bytes per second over time, with a small burst allowance.

    :meth:`acquire` reserves its bytes at once (the balance may go negative) and then
    sleeps until the balance it left behind is paid back, so callers are served in the
    order they asked, without a lock or a background task, in O(1) per call. Over any
    window longer than the burst the bytes released stay within ``rate x window +
    burst + the largest single request``. Callers should ask in pieces no larger than
    :attr:`piece_size` so the flow stays smooth at low rates.
    """

    def __init__(
        self,
        rate: float,
        *,
        burst_seconds: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ):
        if not rate > 0:
            raise ValueError(f"the rate must be positive, not {rate!r}")
        self.rate = float(rate)
        self.capacity = max(1.0, self.rate * burst_seconds)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._stamp = clock()
        self.bytes_granted = 0

    @property
    def piece_size(self) -> int:
        """A request size that keeps each wait near 50 ms (at least 4 KiB, at most 1 MiB)."""
        return int(min(1024 * 1024, max(4096, self.rate / 20)))

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._stamp
        if elapsed > 0:
            self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
            self._stamp = now

    def delay_for(self, count: int) -> float:
        """Reserve ``count`` bytes now; return how long the caller must wait before sending."""
        self._refill()
        self._tokens -= count
        self.bytes_granted += count
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def refund(self, count: int) -> None:
        """Give back bytes reserved but never sent (a cancelled wait)."""
        self._refill()
        self._tokens = min(self.capacity, self._tokens + count)
        self.bytes_granted -= count

    async def acquire(self, count: int) -> None:
        """Wait until ``count`` more bytes may move; a cancelled wait gives its bytes back."""
        if count <= 0:
            return
        wait = self.delay_for(count)
        if wait <= 0:
            return
        try:
            await self._sleep(wait)
        except BaseException:
            self.refund(count)
            raise
