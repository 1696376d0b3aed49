"""What the transport needs of a client's pacing: request slots and the Retry-After pause.

The pacing itself (concurrency controller, rate cap, pause gate) lives in
:mod:`kore_models.transfer.pacing`; the transport sits below it and knows it only through
these protocols. :class:`PacedAttempts` wraps each attempt of one call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol, TypeVar

__all__ = ["PacedAttempts", "PacedTicket", "RequestPacing"]

T = TypeVar("T")


class PacedTicket(Protocol):
    """A held request slot; ``add`` reports the bytes the request moved."""

    def add(self, count: int) -> None: ...


class RequestPacing(Protocol):
    """A client's pacing as the transport uses it (``transfer.pacing.Pacer``)."""

    def slot(self, *, honour_pause: bool = True) -> AbstractAsyncContextManager[PacedTicket]: ...

    async def wait_until_open(self) -> None: ...

    def pause(self, seconds: float, reason: str, source: BaseException | None = None) -> None: ...


class PacedAttempts:
    """The attempts of one call: each waits while the client is paused by a server's
    Retry-After; with ``pace`` each holds one of its slots and counts ``pace_bytes`` as
    goodput on success. A Retry-After met by this call pauses the whole client
    (:meth:`paused`); the attempt after it does not wait at the gate again, since its own
    retry wait was that pause."""

    def __init__(
        self, pacing: RequestPacing | None, pace: RequestPacing | None, pace_bytes: int
    ) -> None:
        self._pacing = pacing
        self._pace = pace
        self._pace_bytes = pace_bytes
        self._waited_out = False

    async def run(self, send: Callable[[], Awaitable[T]]) -> T:
        """One attempt: ``send()`` under the pause gate and, with ``pace``, a slot."""
        honour_pause, self._waited_out = not self._waited_out, False
        if self._pace is not None:
            async with self._pace.slot(honour_pause=honour_pause) as ticket:
                result = await send()
                ticket.add(self._pace_bytes)
                return result
        if self._pacing is not None and honour_pause:
            await self._pacing.wait_until_open()
        return await send()

    def paused(self, seconds: float, error: BaseException) -> None:
        """This call got a Retry-After of ``seconds``: hold every new request of the client."""
        self._waited_out = True
        if self._pacing is not None:
            self._pacing.pause(seconds, "Retry-After", error)
