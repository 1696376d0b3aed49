"""The client-wide pause gate: a Retry-After from any request holds back every new request."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

__all__ = ["PauseGate"]

log = logging.getLogger("kore_models.pacing")

PauseListener = Callable[[float, str, BaseException | None], None]


class PauseGate:
    """Open unless a server asked the client to wait; :meth:`wait` blocks until it reopens.

    :meth:`pause` (from the retry path, with the server's ``Retry-After``) closes the gate
    until ``now + seconds`` (a later deadline extends it, an earlier one never shortens
    it) and tells every listener, the concurrency controller among them. Requests already
    in flight are not touched; new ones wait.
    """

    def __init__(
        self,
        *,
        cap: float = 120.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.cap = cap
        self._clock = clock
        self._sleep = sleep
        self._until = float("-inf")
        self._listeners: list[PauseListener] = []
        self.pauses = 0
        self.paused_seconds = 0.0

    def add_listener(self, listener: PauseListener) -> None:
        """Call ``listener(seconds, reason, source)`` on every pause."""
        self._listeners.append(listener)

    @property
    def is_open(self) -> bool:
        """True when new requests may start now."""
        return self._clock() >= self._until

    @property
    def remaining(self) -> float:
        """Seconds until the gate reopens (0 when open)."""
        return max(0.0, self._until - self._clock())

    def pause(
        self, seconds: float, reason: str = "Retry-After", source: BaseException | None = None
    ) -> None:
        """Hold new requests for ``seconds`` (capped at :attr:`cap`).

        ``source`` is the error that carried the Retry-After, so a listener that saw the
        same error already (the controller, through the failed request's slot) counts it
        once.
        """
        seconds = min(max(0.0, seconds), self.cap)
        now = self._clock()
        until = now + seconds
        if until > self._until:
            self.paused_seconds += until - max(now, self._until)
            self._until = until
        self.pauses += 1
        log.info("pausing new requests for %.2fs (%s)", seconds, reason)
        for listener in self._listeners:
            listener(seconds, reason, source)

    async def wait(self) -> None:
        """Return once the gate is open (at once when it is)."""
        while True:
            remaining = self._until - self._clock()
            if remaining <= 0:
                return
            await self._sleep(remaining)
