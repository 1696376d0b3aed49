"""The high-level verbs on ``kore.models`` and ``kore.dock_status``.

``kore.models`` adds ``import_file`` and ``export_to_file`` to the raw endpoint calls,
and ``wait=`` to ``deploy``/``undeploy``; ``kore.dock_status`` adds ``watch`` and ``wait``.
Each verb reports through an optional ``on_progress`` callback of
:class:`~kore_models.transfer.progress.ProgressEvent`.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._http import Transport
from .errors import DownloadError
from .resources.dock_status import DockStatusAPI
from .resources.files import FilesAPI
from .resources.models import ModelsAPI
from .settings import Settings
from .transfer.download import DEFAULT_RANGES, download_file, normalise_sha256
from .transfer.partfile import resolve_destination
from .transfer.poll import PollPolicy, wait_for_job, watch_job
from .transfer.progress import Phase, ProgressCallback, ProgressTracker
from .transfer.upload import ImportResult, import_file
from .types import DeployConfig, JobDocument, ModelType

__all__ = ["DockStatus", "ExportResult", "Models", "poll_policy_from"]


def poll_policy_from(settings: Settings) -> PollPolicy:
    """The poll pacing configured in ``settings``."""
    return PollPolicy(
        initial=settings.poll_initial,
        maximum=settings.poll_max,
        multiplier=settings.poll_multiplier,
        min_interval=settings.poll_min_interval,
    )


@dataclass(frozen=True)
class ExportResult:
    """An exported model on disk."""

    model_id: str
    dock_status_id: str | None
    path: Path
    bytes: int
    seconds: float
    resumed_from: int
    sha256: str = ""


class DockStatus(DockStatusAPI):
    """``kore.dock_status``: ``get`` plus ``watch`` (changes) and ``wait`` (until it ends)."""

    def __init__(self, transport: Transport):
        super().__init__(transport)
        self._settings = transport.settings

    def watch(
        self, dock_status_id: str, *, timeout: float | None = None
    ) -> AsyncIterator[JobDocument]:
        """Async iterator of the job's documents, one per change, ending when it ends."""
        return watch_job(
            self, dock_status_id, policy=poll_policy_from(self._settings), timeout=timeout
        )

    async def wait(
        self,
        dock_status_id: str,
        *,
        timeout: float | None = None,
        on_update: Callable[[JobDocument], None] | None = None,
    ) -> JobDocument:
        """Poll until SUCCESS; FAILED raises JobFailedError, the deadline JobTimeoutError."""
        return await wait_for_job(
            self,
            dock_status_id,
            policy=poll_policy_from(self._settings),
            timeout=timeout,
            on_update=on_update,
        )


class Models(ModelsAPI):
    """``kore.models``: export/deploy/undeploy plus ``import_file`` and ``export_to_file``."""

    def __init__(self, transport: Transport, files: FilesAPI, dock_status: DockStatus):
        super().__init__(transport)
        self._transport = transport
        self._files = files
        self._dock = dock_status

    async def import_file(
        self,
        path: str | os.PathLike[str],
        *,
        is_adapter: bool = False,
        chunk_size: int | None = None,
        concurrency: int | None = None,
        on_progress: ProgressCallback | None = None,
        resume: bool = True,
        wait: bool = True,
        timeout: float | None = None,
    ) -> ImportResult:
        """Import a model file: plan, start a session, upload chunks, complete, await the job."""
        return await import_file(
            self._files,
            self._dock,
            self._transport.settings,
            path,
            is_adapter=is_adapter,
            chunk_size=chunk_size,
            concurrency=concurrency,
            on_progress=on_progress,
            resume=resume,
            wait=wait,
            timeout=timeout,
            poll_policy=poll_policy_from(self._transport.settings),
        )

    async def export_to_file(
        self,
        model_id: str,
        dest: str | os.PathLike[str],
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        expected_sha256: str | None = None,
        ranges: int = DEFAULT_RANGES,
        wait_for_lock: bool = False,
    ) -> ExportResult:
        """Start an export, wait for its job, and download the file to ``dest``.

        A folder ``dest`` means ``dest/<modelId>.tar``. ``expected_sha256`` fails the
        download with IntegrityError on a mismatch (nothing kept); ``ranges`` is how many
        Range requests run at once for a large export; ``wait_for_lock`` waits for
        another run downloading to the same ``dest`` instead of raising LockedError.
        """
        normalise_sha256(expected_sha256)  # a bad value fails before the export starts
        name = re.sub(r"[/\\\x00]", "_", model_id) + ".tar"
        target = await asyncio.to_thread(resolve_destination, Path(dest), name)
        started = time.monotonic()
        tracker = ProgressTracker(on_progress)
        tracker.phase(Phase.PROCESSING, message="exporting on the server")
        job = await super().export(model_id)
        final = await self._wait(
            job,
            timeout,
            lambda doc: tracker.update(
                job_status=doc.status, job_percentage=doc.percentage_complete
            ),
        )
        url = final.download_url
        if not url:
            raise DownloadError(
                f"the export job {final.dock_status_id} succeeded but gave no download URL"
            )
        tracker.phase(Phase.DOWNLOADING)
        result = await download_file(
            self._transport,
            url,
            target,
            model_id=model_id,
            ranges=ranges,
            expected_sha256=expected_sha256,
            wait_for_lock=wait_for_lock,
            on_bytes=tracker.add_bytes,
            on_total=lambda total: tracker.update(bytes_total=total),
            block_size=self._transport.settings.read_block_size,
        )
        tracker.phase(Phase.DONE, bytes_done=result.bytes, bytes_total=result.bytes)
        return ExportResult(
            model_id=model_id,
            dock_status_id=final.dock_status_id,
            path=target,
            bytes=result.bytes,
            seconds=time.monotonic() - started,
            resumed_from=result.resumed_from,
            sha256=result.sha256,
        )

    async def _wait(
        self,
        job: JobDocument,
        timeout: float | None,
        on_update: Callable[[JobDocument], None] | None = None,
    ) -> JobDocument:
        if job.dock_status_id is None:
            return job
        return await wait_for_job(
            self._dock,
            job.dock_status_id,
            policy=poll_policy_from(self._transport.settings),
            timeout=timeout,
            on_update=on_update,
            first=job,
        )

    async def deploy(
        self,
        model_id: str,
        model_type: ModelType,
        config: DeployConfig | dict[str, Any],
        *,
        wait: bool = False,
        timeout: float | None = None,
        on_update: Callable[[JobDocument], None] | None = None,
    ) -> JobDocument:
        """Deploy; with ``wait`` return the final job document (FAILED raises).

        ``on_update`` receives each changed job document while waiting.
        """
        job = await super().deploy(model_id, model_type, config)
        return await self._wait(job, timeout, on_update) if wait else job

    async def undeploy(
        self,
        model_id: str,
        *,
        wait: bool = False,
        timeout: float | None = None,
        on_update: Callable[[JobDocument], None] | None = None,
    ) -> JobDocument:
        """Undeploy; with ``wait`` return the final job document (FAILED raises)."""
        job = await super().undeploy(model_id)
        return await self._wait(job, timeout, on_update) if wait else job
