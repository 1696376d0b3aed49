"""One client's pacing: its controller and pause gate, and the process's rate bucket."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

from .bucket import TokenBucket
from .controller import ConcurrencyController, SlotContext, TuningConfig
from .gate import PauseGate

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
        clock: Callable[[], float] = time.monotonic,
    ):
        self.gate = PauseGate(cap=retry_after_cap, clock=clock)
        fixed = None if concurrency == "auto" else int(concurrency)
        config = config or TuningConfig(maximum=max(1, maximum))
        self.controller = ConcurrencyController(config, fixed=fixed, gate=self.gate, clock=clock)
        if bucket is None and limit_rate:
            bucket = process_bucket(limit_rate)
        self.bucket = bucket

    @property
    def piece_size(self) -> int | None:
        """The largest piece to move between two :meth:`throttle` calls (None: no cap)."""
        return None if self.bucket is None else self.bucket.piece_size

    async def throttle(self, count: int) -> None:
        """Wait until ``count`` more bytes may move under the rate cap (at once without one)."""
        if self.bucket is not None:
            await self.bucket.acquire(count)

    def slot(self) -> SlotContext:
        """``async with pacer.slot() as ticket:`` around one request attempt."""
        return self.controller.slot()

    def pause(self, seconds: float, reason: str, source: BaseException | None = None) -> None:
        """Hold the client's new requests for ``seconds`` (a server's Retry-After)."""
        self.gate.pause(seconds, reason, source)

    async def wait_until_open(self) -> None:
        """Return once new requests may start (the Retry-After pause is over)."""
        await self.gate.wait()
