"""Progress events of the transfer engines, and the tracker that emits them.

Engines report, front ends draw: the uploader, poller and downloader call a tracker,
and the tracker hands :class:`ProgressEvent` objects to the caller's ``on_progress``
callback (a CLI progress bar, a logger, a metrics exporter). Bytes are rewound when a
chunk attempt fails, so the byte count never overshoots the file size.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

__all__ = ["Phase", "ProgressCallback", "ProgressEvent", "ProgressTracker"]

log = logging.getLogger("kore_models.progress")


class Phase(StrEnum):
    """Where a transfer is."""

    PLANNING = "planning"
    UPLOADING = "uploading"
    COMPLETING = "completing"
    PROCESSING = "processing"
    DOWNLOADING = "downloading"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class ProgressEvent:
    """A snapshot of a transfer.

    ``throughput`` is bytes per second over the last few seconds; ``job_status`` and
    ``job_percentage`` are the server's while it processes the file. ``concurrency`` is
    the number of requests allowed in flight now; ``decision`` is set on the one event
    emitted when the controller changes it (``"concurrency 4 -> 8: why"``).
    """

    phase: Phase
    bytes_done: int = 0
    bytes_total: int = 0
    chunks_done: int = 0
    chunks_total: int = 0
    retries: int = 0
    throughput: float = 0.0
    elapsed: float = 0.0
    job_status: str | None = None
    job_percentage: float | None = None
    message: str | None = None
    concurrency: int = 0
    decision: str | None = None


ProgressCallback = Callable[[ProgressEvent], None]


class ProgressTracker:
    """Counts bytes, chunks and retries and emits events (throttled while bytes move)."""

    def __init__(
        self,
        callback: ProgressCallback | None,
        *,
        bytes_total: int = 0,
        chunks_total: int = 0,
        min_interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._callback = callback
        self._clock = clock
        self._start = clock()
        self._min_interval = min_interval
        self._last_emit = float("-inf")
        self._window: list[tuple[float, int]] = []
        self.event = ProgressEvent(
            phase=Phase.PLANNING, bytes_total=bytes_total, chunks_total=chunks_total
        )
        self._callback_failed = False

    def _rate(self, now: float) -> float:
        self._window.append((now, self.event.bytes_done))
        while len(self._window) > 2 and now - self._window[0][0] > 5.0:
            self._window.pop(0)
        first_t, first_b = self._window[0]
        span = now - first_t
        return max(0.0, (self.event.bytes_done - first_b) / span) if span > 0 else 0.0

    def _emit(self, *, force: bool) -> None:
        now = self._clock()
        if not force and now - self._last_emit < self._min_interval:
            return
        self._last_emit = now
        self.event = replace(self.event, elapsed=now - self._start, throughput=self._rate(now))
        if self._callback is None:
            return
        try:
            self._callback(self.event)
        except Exception:
            if not self._callback_failed:
                log.warning(
                    "the progress callback raised; further errors are ignored", exc_info=True
                )
            self._callback_failed = True

    def update(self, *, force: bool = True, **changes: Any) -> None:
        """Change fields of the current event and emit it."""
        self.event = replace(self.event, **changes)
        self._emit(force=force)

    def phase(self, phase: Phase, **changes: Any) -> None:
        """Enter a phase (always emitted); the message is cleared unless one is given."""
        changes.setdefault("message", None)
        if "bytes_done" in changes:
            self._window.clear()  # a jump to bytes already sent (a resume) is not speed
            self.event = replace(self.event, bytes_done=changes.pop("bytes_done"))
            self._window.append((self._clock(), self.event.bytes_done))
        self.update(phase=phase, **changes)

    def add_bytes(self, count: int) -> None:
        """Bytes moved (throttled emission)."""
        self.event = replace(self.event, bytes_done=self.event.bytes_done + count)
        self._emit(force=False)

    def rewind_bytes(self, count: int) -> None:
        """Bytes of a failed attempt that will be sent again."""
        self.event = replace(self.event, bytes_done=max(0, self.event.bytes_done - count))
        self._emit(force=False)

    def decided(self, concurrency: int, decision: str) -> None:
        """The controller changed the concurrency: one event carries why (always emitted)."""
        self.update(concurrency=concurrency, decision=decision)
        self.event = replace(self.event, decision=None)

    def chunk_done(self) -> None:
        """One more chunk acknowledged."""
        self.update(chunks_done=self.event.chunks_done + 1, force=False)

    def retried(self) -> None:
        """One more retry."""
        self.update(retries=self.event.retries + 1)
