"""Progress display: rich bars on a terminal, plain log lines otherwise, nothing with --quiet."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Literal

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Column

from ..transfer.progress import Phase, ProgressEvent
from .output import Output, human_bytes

__all__ = ["ProgressDisplay", "describe_phase", "pick_mode"]

Mode = Literal["rich", "plain", "none"]
Callback = Callable[[ProgressEvent], None]

_PHASE_LABELS: dict[Phase, str] = {
    Phase.PLANNING: "planning",
    Phase.UPLOADING: "uploading",
    Phase.COMPLETING: "completing the upload",
    Phase.PROCESSING: "processing on the server",
    Phase.DOWNLOADING: "downloading",
    Phase.DONE: "done",
    Phase.FAILED: "failed",
}

PLAIN_INTERVAL = 5.0


def pick_mode(output: Output, *, force: Mode | None = None) -> Mode:
    """``none`` with --quiet, ``rich`` when stderr is a terminal, else ``plain``."""
    if force is not None:
        return force
    if output.quiet:
        return "none"
    return "rich" if sys.stderr.isatty() else "plain"


def describe_phase(event: ProgressEvent) -> str:
    """``processing on the server (IN_PROGRESS 40%)`` and the like."""
    label = event.message if event.message and event.phase is Phase.PROCESSING else None
    text = label or _PHASE_LABELS.get(event.phase, str(event.phase))
    if event.phase is Phase.PROCESSING:
        extra = [event.job_status or ""]
        if event.job_percentage is not None:
            extra.append(f"{event.job_percentage:.0f}%")
        detail = " ".join(e for e in extra if e)
        if detail:
            text = f"{text} ({detail})"
    return text


def _detail(event: ProgressEvent) -> str:
    parts = []
    if event.chunks_total:
        parts.append(f"{event.chunks_done}/{event.chunks_total} chunks")
    if event.retries:
        parts.append(f"{event.retries} retr{'y' if event.retries == 1 else 'ies'}")
    parts.append(describe_phase(event))
    return " · ".join(parts)


def _plain_line(label: str, event: ProgressEvent, *, rate: bool = True) -> str:
    parts = [f"{label}: {describe_phase(event)}"]
    if event.bytes_total and event.phase in (Phase.UPLOADING, Phase.DOWNLOADING):
        pct = 100.0 * event.bytes_done / event.bytes_total
        parts.append(
            f"{human_bytes(event.bytes_done)}/{human_bytes(event.bytes_total)} ({pct:.0f}%)"
        )
        if rate and event.throughput:
            parts.append(f"{event.throughput / 1e6:.1f} MB/s")
    elif event.bytes_done and event.phase in (Phase.COMPLETING, Phase.DONE):
        average = f" ({event.bytes_done / event.elapsed / 1e6:.1f} MB/s)" if event.elapsed else ""
        parts.append(f"{human_bytes(event.bytes_done)} in {event.elapsed:.1f} s{average}")
    if event.chunks_total and event.phase in (Phase.UPLOADING, Phase.COMPLETING):
        parts.append(f"chunk {event.chunks_done}/{event.chunks_total}")
    if event.retries:
        parts.append(f"{event.retries} retries")
    return ", ".join(parts)


def _column(**options: Any) -> Column:
    return Column(overflow="ellipsis", **options)


class ProgressDisplay:
    """One display for a command; ``track(label)`` gives the ``on_progress`` of one transfer."""

    def __init__(self, output: Output, mode: Mode):
        self.output = output
        self.mode = mode
        self._progress: Progress | None = None
        if mode == "rich":
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}", table_column=_column(max_width=30)),
                BarColumn(bar_width=24),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[detail]}", table_column=_column(no_wrap=True)),
                console=output.stderr,
                transient=False,
                refresh_per_second=8,
            )

    def __enter__(self) -> ProgressDisplay:
        if self._progress is not None:
            self._progress.start()
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
        if self._progress is not None:
            self._progress.stop()

    def track(self, label: str) -> Callback:
        """A progress callback that draws the transfer called ``label``."""
        if self.mode == "none":
            return lambda event: None
        if self._progress is not None:
            return self._rich_callback(self._progress, label)
        return self._plain_callback(label)

    def _rich_callback(self, progress: Progress, label: str) -> Callback:
        task: TaskID = progress.add_task(label, total=None, detail="starting")

        def on_progress(event: ProgressEvent) -> None:
            progress.update(
                task,
                completed=event.bytes_done,
                total=event.bytes_total or None,
                detail=_detail(event),
            )
            if event.phase in (Phase.DONE, Phase.FAILED):
                progress.stop_task(task)

        return on_progress

    def _plain_callback(self, label: str) -> Callback:
        last_key: tuple[object, ...] | None = None
        last_time = 0.0

        def on_progress(event: ProgressEvent) -> None:
            nonlocal last_key, last_time
            key = (event.phase, event.job_status, event.message)
            now = time.monotonic()
            moving = event.phase in (Phase.UPLOADING, Phase.DOWNLOADING)
            changed = key != last_key
            if changed or (moving and now - last_time >= PLAIN_INTERVAL):
                last_key = key
                last_time = now
                # a phase's first rate is not meaningful (a resumed upload jumps ahead)
                self.output.info(_plain_line(label, event, rate=not changed))

        return on_progress
