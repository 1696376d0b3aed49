"""RichProgress: a ready progress display (rich bars) for ``on_progress`` callbacks.

Usage::

    with kore_models.RichProgress() as bars:
        await kore.models.import_file("model.tar", on_progress=bars)

``bars`` draws one transfer; ``bars.track(label)`` gives one callback per transfer for
several at once. Sizes are binary (MiB) and labelled; the speed and ETA count only the
bytes moved in this run (a resumed import does not report the skipped bytes as speed).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
)
from rich.table import Column
from rich.text import Text

from .transfer.progress import Phase, ProgressCallback, ProgressEvent
from .units import format_size

__all__ = ["Phase", "ProgressEvent", "RichProgress", "describe_phase", "eta_of", "format_eta"]

_PHASE_LABELS: dict[Phase, str] = {
    Phase.PLANNING: "planning",
    Phase.UPLOADING: "uploading",
    Phase.COMPLETING: "completing the upload",
    Phase.PROCESSING: "processing on the server",
    Phase.DOWNLOADING: "downloading",
    Phase.DONE: "done",
    Phase.FAILED: "failed",
}


def format_eta(seconds: float | None) -> str:
    """``1:02:03``, ``4:05`` or ``-`` when unknown."""
    if seconds is None or seconds < 0 or seconds != seconds:
        return "-"
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def eta_of(event: ProgressEvent) -> float | None:
    """Seconds left at the current rate while bytes move, else None."""
    moving = event.phase in (Phase.UPLOADING, Phase.DOWNLOADING)
    if not moving or event.throughput <= 0 or not event.bytes_total:
        return None
    return max(0.0, (event.bytes_total - event.bytes_done) / event.throughput)


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


class _RateColumn(ProgressColumn):
    """The tracker's rate of this run (rich's own speed would count a resume's jump)."""

    def render(self, task: Task) -> Text:
        rate = float(task.fields.get("rate") or 0.0)
        return Text(f"{format_size(rate)}/s" if rate > 0 else "- /s", style="progress.data.speed")


class _EtaColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(format_eta(task.fields.get("eta")), style="progress.remaining")


def _column(**options: Any) -> Column:
    return Column(overflow="ellipsis", **options)


class RichProgress:
    """Rich progress bars fed by ``on_progress`` events; starts on first use.

    Call the object itself as ``on_progress`` for one transfer, or ``track(label)`` for
    one callback per transfer. ``stop()`` (or leaving the ``with`` block) ends the display;
    it also stops by itself when every transfer it drew is done or failed.
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        label: str = "transfer",
        transient: bool = False,
        auto_stop: bool = True,
    ):
        self.console = console or Console(stderr=True)
        self.label = label
        self.auto_stop = auto_stop
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}", table_column=_column(max_width=30)),
            BarColumn(bar_width=24),
            DownloadColumn(binary_units=True),
            _RateColumn(),
            _EtaColumn(),
            TextColumn("{task.fields[detail]}", table_column=_column(no_wrap=True)),
            console=self.console,
            transient=transient,
            refresh_per_second=8,
        )
        self._started = False
        self._active: set[TaskID] = set()
        self._default: ProgressCallback | None = None

    def __enter__(self) -> RichProgress:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start drawing (idempotent)."""
        if not self._started:
            self._started = True
            self.progress.start()

    def stop(self) -> None:
        """Stop drawing (idempotent)."""
        if self._started:
            self._started = False
            self.progress.stop()

    def __call__(self, event: ProgressEvent) -> None:
        if self._default is None:
            self._default = self.track(self.label)
        self._default(event)

    def track(self, label: str) -> ProgressCallback:
        """A callback that draws the transfer called ``label`` on its own line."""
        task = self.progress.add_task(label, total=None, detail="starting", rate=0.0, eta=None)
        self._active.add(task)

        def on_progress(event: ProgressEvent) -> None:
            self.start()
            self.progress.update(
                task,
                completed=event.bytes_done,
                total=event.bytes_total or None,
                detail=_detail(event),
                rate=event.throughput if event.phase in (Phase.UPLOADING, Phase.DOWNLOADING) else 0,
                eta=eta_of(event),
            )
            if event.phase in (Phase.DONE, Phase.FAILED):
                self.progress.stop_task(task)
                self._active.discard(task)
                if self.auto_stop and not self._active:
                    self.stop()

        return on_progress
