"""One client's pacing: its controller and pause gate, and the process's rate bucket."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Literal

from .bucket import TokenBucket
from .controller import ConcurrencyController, SlotContext, SlotTicket, TuningConfig
from .gate import PauseGate

if TYPE_CHECKING:
    from ...settings import Settings

__all__ = ["Pacer", "process_bucket"]

_BUCKETS: dict[int, TokenBucket] = {}
_BUCKETS_LOCK = threading.Lock()


def process_bucket(rate: int) -> TokenBucket:
    """The process's bucket for ``rate`` bytes per second.

    Every client of the process configured with the same ``limit_rate`` draws from this
    one bucket, so the cap holds for the process however many clients, files and
    transfers share it.
    """
    with _BUCKETS_LOCK:
        bucket = _BUCKETS.get(rate)
        if bucket is None:
            bucket = _BUCKETS[rate] = TokenBucket(rate)
        return bucket


class Pacer:
    """The controller, pause gate and rate bucket every request of one client goes through.

    ``concurrency`` is ``"auto"`` (the controller seeks the plateau between 1 and
    ``maximum``) or an integer that pins it; ``limit_rate`` is bytes per second or None.
    """

    def __init__(
        self,
        *,
        concurrency: int | Literal["auto"] = "auto",
        maximum: int = 32,
        limit_rate: int | None = None,
        retry_after_cap: float = 120.0,
        config: TuningConfig | None = None,
        bucket: TokenBucket | None = None,
        gate: PauseGate | None = None,
        controller: ConcurrencyController | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._key = (concurrency, maximum, limit_rate)
        self._twins: dict[tuple[int | str, int, int | None], Pacer] = {}
        self.gate = gate or PauseGate(cap=retry_after_cap, clock=clock)
        if controller is None:
            fixed = None if concurrency == "auto" else int(concurrency)
            config = config or TuningConfig(maximum=max(1, maximum))
            controller = ConcurrencyController(config, fixed=fixed, gate=self.gate, clock=clock)
        self.controller = controller
        if bucket is None and limit_rate:
            bucket = process_bucket(limit_rate)
        self.bucket = bucket

    @classmethod
    def from_settings(cls, settings: Settings) -> Pacer:
        """The pacing of a client built from ``settings``."""
        return cls(
            concurrency=settings.concurrency,
            maximum=settings.max_concurrency,
            limit_rate=settings.limit_rate,
            retry_after_cap=settings.retry_after_cap,
        )

    def for_settings(self, settings: Settings) -> Pacer:
        """This pacer, or, when one call asks for other concurrency or rate, one that
        shares its pause gate (and controller or bucket where they match). Pacers made
        here are kept, so calls asking the same thing share one controller too."""
        wanted = (settings.concurrency, settings.max_concurrency, settings.limit_rate)
        if wanted == self._key:
            return self
        twin = self._twins.get(wanted)
        if twin is None:
            twin = Pacer(
                concurrency=settings.concurrency,
                maximum=settings.max_concurrency,
                limit_rate=settings.limit_rate,
                gate=self.gate,
                controller=self.controller if wanted[:2] == self._key[:2] else None,
            )
            self._twins[wanted] = twin
        return twin

    @property
    def workers(self) -> int:
        """How many tasks a transfer should run: enough to fill the largest limit."""
        controller = self.controller
        return controller.config.maximum if controller.adaptive else controller.limit

    @property
    def piece_size(self) -> int | None:
        """The largest piece to move between two :meth:`throttle` calls (None: no cap)."""
        return None if self.bucket is None else self.bucket.piece_size

    async def throttle(self, count: int) -> None:
        """Wait until ``count`` more bytes may move under the rate cap (at once without one)."""
        if self.bucket is not None:
            await self.bucket.acquire(count)

    async def paced(
        self, blocks: AsyncIterator[bytes], ticket: SlotTicket | None = None
    ) -> AsyncIterator[bytes]:
        """``blocks`` (a download's body) under the rate cap, counted on ``ticket``."""
        async for block in blocks:
            await self.throttle(len(block))
            if ticket is not None:
                ticket.add(len(block))
            yield block

    def slot(self, *, honour_pause: bool = True) -> SlotContext:
        """``async with pacer.slot() as ticket:`` around one request attempt."""
        return self.controller.slot(honour_pause=honour_pause)

    def pause(self, seconds: float, reason: str, source: BaseException | None = None) -> None:
        """Hold the client's new requests for ``seconds`` (a server's Retry-After)."""
        self.gate.pause(seconds, reason, source)

    async def wait_until_open(self) -> None:
        """Return once new requests may start (the Retry-After pause is over)."""
        await self.gate.wait()
