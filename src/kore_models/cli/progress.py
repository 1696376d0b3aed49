"""Progress on stderr: rich bars on a terminal, plain lines elsewhere, JSON lines, or nothing."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal

from ..progress_display import Phase, ProgressEvent, RichProgress, describe_phase, eta_of
from ..units import format_size
from .output import Output

__all__ = ["ProgressDisplay", "describe_phase", "event_json", "pick_mode"]

Mode = Literal["rich", "plain", "json", "none"]
Callback = Callable[[ProgressEvent], None]

PLAIN_INTERVAL = 5.0
JSON_INTERVAL = 1.0
_MOVING = (Phase.UPLOADING, Phase.DOWNLOADING)


def pick_mode(output: Output, requested: str = "auto") -> Mode:
    """The mode asked for; ``auto`` is none with --quiet, rich on a terminal, else plain."""
    if requested in ("rich", "plain", "json", "none"):
        return requested  # type: ignore[return-value]
    if output.quiet:
        return "none"
    return "rich" if sys.stderr.isatty() else "plain"


def event_json(label: str, event: ProgressEvent) -> dict[str, Any]:
    """One ``--progress json`` line: phase, bytes, rate, ETA, retries, chunks."""
    eta = eta_of(event)
    data: dict[str, Any] = {
        "event": "progress",
        "label": label,
        "phase": str(event.phase),
        "bytes": event.bytes_done,
        "bytesTotal": event.bytes_total,
        "rateBytesPerSecond": round(event.throughput, 1) if event.phase in _MOVING else 0.0,
        "etaSeconds": None if eta is None else round(eta, 1),
        "retries": event.retries,
        "chunks": event.chunks_done,
        "chunksTotal": event.chunks_total,
        "elapsedSeconds": round(event.elapsed, 3),
    }
    if event.job_status is not None:
        data["jobStatus"] = event.job_status
    if event.job_percentage is not None:
        data["jobPercentage"] = event.job_percentage
    if event.message:
        data["message"] = event.message
    return data


def _plain_line(label: str, event: ProgressEvent, sent: int, *, rate: bool = True) -> str:
    parts = [f"{label}: {describe_phase(event)}"]
    if event.bytes_total and event.phase in _MOVING:
        pct = 100.0 * event.bytes_done / event.bytes_total
        done, total = format_size(event.bytes_done), format_size(event.bytes_total)
        parts.append(f"{done}/{total} ({pct:.0f}%)")
        if rate and event.throughput:
            parts.append(f"{format_size(event.throughput)}/s")
    elif event.bytes_done and event.phase in (Phase.COMPLETING, Phase.DONE):
        average = f" ({format_size(sent / event.elapsed)}/s)" if event.elapsed and sent else ""
        parts.append(f"{format_size(sent)} transferred in {event.elapsed:.1f} s{average}")
    if event.chunks_total and event.phase in (Phase.UPLOADING, Phase.COMPLETING):
        parts.append(f"chunk {event.chunks_done}/{event.chunks_total}")
    if event.retries:
        parts.append(f"{event.retries} retries")
    return ", ".join(parts)


class _RunBytes:
    """Bytes moved by this run: what the first moving event did not already count."""

    def __init__(self) -> None:
        self.start: int | None = None

    def sent(self, event: ProgressEvent) -> int:
        if event.phase in _MOVING and self.start is None:
            self.start = event.bytes_done
        return max(0, event.bytes_done - (self.start or 0))


class ProgressDisplay:
    """One display for a command; ``track(label)`` gives the ``on_progress`` of one transfer.

    Planning notices (a resume, a raised or kept chunk size) are printed once as notes in
    every mode but ``none``.
    """

    def __init__(self, output: Output, mode: Mode, *, clock: Callable[[], float] = time.monotonic):
        self.output = output
        self.mode = mode
        self.clock = clock
        self._rich: RichProgress | None = None
        if mode == "rich":
            self._rich = RichProgress(output.stderr, auto_stop=False)

    def __enter__(self) -> ProgressDisplay:
        if self._rich is not None:
            self._rich.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop redrawing (idempotent)."""
        if self._rich is not None:
            self._rich.stop()

    def notice(self, label: str, message: str) -> None:
        """A one-off note about a transfer (also a JSON line in json mode)."""
        if self.mode == "json":
            self.output.event("notice", label=label, message=message)
        elif self.mode != "none":
            self.output.stderr_line(f"{label}: {message}")

    def track(self, label: str) -> Callback:
        """A progress callback that draws the transfer called ``label``."""
        if self.mode == "none":
            return lambda event: None
        draw = self._draw(label)
        notices: set[str] = set()

        def on_progress(event: ProgressEvent) -> None:
            if event.phase is Phase.PLANNING and event.message and event.message not in notices:
                notices.add(event.message)
                if event.message.startswith(("resuming", "chunk size")):
                    self.notice(label, event.message)
            draw(event)

        return on_progress

    def _draw(self, label: str) -> Callback:
        if self._rich is not None:
            return self._rich.track(label)
        interval = JSON_INTERVAL if self.mode == "json" else PLAIN_INTERVAL
        last_key: tuple[object, ...] | None = None
        last_time = 0.0
        run_bytes = _RunBytes()

        def on_progress(event: ProgressEvent) -> None:
            nonlocal last_key, last_time
            sent = run_bytes.sent(event)
            key = (event.phase, event.job_status, event.message, event.chunks_total)
            now = self.clock()
            changed = key != last_key
            if not changed and not (event.phase in _MOVING and now - last_time >= interval):
                return
            last_key, last_time = key, now
            if self.mode == "json":
                self.output.stderr_line(json.dumps(event_json(label, event)))
            else:
                # a phase's first rate is not meaningful (a resumed upload jumps ahead)
                self.output.info(_plain_line(label, event, sent, rate=not changed))

        return on_progress
