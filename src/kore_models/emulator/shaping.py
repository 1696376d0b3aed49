"""Network shaping: token buckets on a monotonic clock for per-connection and total byte rates."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

READ_SIZE = 4 << 20
# Each cap lets this much through at once: small enough to keep rates smooth over short windows,
# large enough that pacing costs a few wake-ups per second per connection.
BURST_SECONDS = 0.05
MIN_BLOCK = 4096

Clock = Callable[[], float]


class TokenBucket:
    """Bytes at `rate` per second with a burst of BURST_SECONDS; debts are paid by waiting.

    `reserve(n)` takes n tokens at once, even into debt, and returns how long the caller must
    wait before moving those bytes. Callers that share one bucket queue behind each other's
    debts, so the long-run rate across all of them stays at `rate`.
    """

    def __init__(self, rate: float, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self.rate = rate
        self._tokens = self.burst
        self._last = clock()

    @property
    def rate(self) -> float:
        return self._rate

    @rate.setter
    def rate(self, value: float) -> None:
        if value <= 0:
            raise ValueError("rate must be positive")
        self._rate = float(value)

    @property
    def burst(self) -> float:
        return max(float(MIN_BLOCK), self._rate * BURST_SECONDS)

    def reserve(self, n: int) -> float:
        """Take n bytes' worth of tokens; return the seconds to wait before sending them."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        self._tokens -= n
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate


def block_size(*rates: float | None) -> int:
    """Bytes to move per step under the tightest of the given caps (READ_SIZE when uncapped)."""
    capped = [r for r in rates if r]
    if not capped:
        return READ_SIZE
    return int(min(READ_SIZE, max(MIN_BLOCK, min(capped) * BURST_SECONDS)))


class Pacer:
    """Paces one request body (one connection) through its own cap and the shared total cap."""

    def __init__(self, per_connection: float | None, total: TokenBucket | None) -> None:
        self._own = TokenBucket(per_connection) if per_connection else None
        self._total = total
        self.block = block_size(per_connection, total.rate if total else None)

    @property
    def shaped(self) -> bool:
        return self._own is not None or self._total is not None

    async def account(self, n: int) -> None:
        """Record n bytes moved; sleep as long as the tighter cap requires."""
        wait = 0.0
        if self._own is not None:
            wait = self._own.reserve(n)
        if self._total is not None:
            wait = max(wait, self._total.reserve(n))
        if wait > 0:
            await asyncio.sleep(wait)
