"""``kore.models``: export, deploy, undeploy, and the whole-model import and export."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .._http import Transport, encode_segment
from ..errors import ConfigurationError, DownloadError, format_validation_error
from ..ledger import export_entry, import_entry, note_transfer
from ..results import ExportResult, ImportResult, VerifyResult
from ..settings import Settings
from ..transfer.download import download_file, normalise_sha256
from ..transfer.journal import Fingerprint
from ..transfer.pacing import Pacer
from ..transfer.partfile import resolve_destination
from ..transfer.progress import Phase, ProgressCallback, ProgressTracker
from ..transfer.source import prepare_source
from ..transfer.upload import import_file
from ..transfer.verify import verify_model
from ..types import DeployConfig, JobDocument, ModelType
from ._parse import parse_as
from .dock_status import DockStatus
from .files import Files

__all__ = ["Models"]

_MODEL_TYPES = ("openSource", "fineTune")


class Models:
    """``kore.models``: POST /models/{id}/export, /deploy?modelType=, /undeploy, and the
    transfers built on them (``import_file``, ``export_to_file``)."""

    def __init__(self, transport: Transport, files: Files, dock_status: DockStatus):
        self._transport = transport
        self._files = files
        self._dock = dock_status

    def __repr__(self) -> str:
        return f"Models(host={self._transport.settings.host!r})"

    def _pacer_for(self, settings: Settings) -> Pacer:
        """The client's pacing (a call's own ``concurrency`` gets a controller of its own)."""
        pacing = self._transport.pacing
        if isinstance(pacing, Pacer):
            return pacing.for_settings(settings)
        return Pacer.from_settings(settings)

    async def export(self, model_id: str) -> JobDocument:
        """Start an export job; its document carries the download URL once it succeeded."""
        response = await self._transport.request(
            "POST", ["models", encode_segment(model_id, what="model id"), "export"]
        )
        return parse_as(JobDocument, response, what="export")

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
        """Start a deploy job with a validated configuration; ``wait`` awaits its end.

        With ``wait`` the final document is returned (FAILED raises JobFailedError) and
        ``on_update`` receives each changed document; ``timeout`` is a hard deadline.
        """
        if model_type not in _MODEL_TYPES:
            raise ConfigurationError(
                f"model_type must be one of {', '.join(_MODEL_TYPES)}, not {model_type!r}"
            )
        if not isinstance(config, DeployConfig):
            try:
                config = DeployConfig.model_validate(config)
            except ValidationError as exc:
                raise ConfigurationError(
                    format_validation_error(exc, "invalid deploy config")
                ) from None
        response = await self._transport.request(
            "POST",
            ["models", encode_segment(model_id, what="model id"), "deploy"],
            params={"modelType": model_type},
            json_body=config.to_api(),
        )
        job = parse_as(JobDocument, response, what="deploy")
        return await self._await(job, timeout, on_update) if wait else job

    async def undeploy(
        self,
        model_id: str,
        *,
        wait: bool = False,
        timeout: float | None = None,
        on_update: Callable[[JobDocument], None] | None = None,
    ) -> JobDocument:
        """Start an undeploy job; ``wait`` awaits its end as for :meth:`deploy`."""
        response = await self._transport.request(
            "POST", ["models", encode_segment(model_id, what="model id"), "undeploy"]
        )
        job = parse_as(JobDocument, response, what="undeploy")
        return await self._await(job, timeout, on_update) if wait else job

    @staticmethod
    def check_file(
        path: str | os.PathLike[str],
        *,
        exclude: Sequence[str] = (),
        include: Sequence[str] = (),
        as_tar: bool = False,
    ) -> int:
        """The checks ``import_file`` makes before sending anything, alone (blocking).

        Returns the size that would be sent (for a folder: its tar's); raises
        LocalFileError saying why it cannot be imported (missing, not a regular file,
        empty, unreadable, a lone model file without ``as_tar``, a folder with entries
        that cannot be archived). For preflights of many files, e.g. a manifest, before
        the first upload.
        """
        source = prepare_source(
            Path(os.fspath(path)).expanduser(), exclude=exclude, include=include, as_tar=as_tar
        )
        return source.size

    async def import_file(
        self,
        path: str | os.PathLike[str],
        *,
        is_adapter: bool = False,
        chunk_size: int | str | None = None,
        concurrency: int | str | None = None,
        on_progress: ProgressCallback | None = None,
        resume: bool = True,
        wait: bool = True,
        job_timeout: float | None = None,
        exclude: Sequence[str] = (),
        include: Sequence[str] = (),
        as_tar: bool = False,
        checksum: bool | None = None,
    ) -> ImportResult:
        """Import a model file: plan, start a session, upload chunks, complete, await the job.

        ``path`` may be a folder: it is sent as ``<folder>.tar``, generated while it
        uploads (no temporary file), leaving out ``.git/``, ``.cache/``, ``__pycache__/``,
        ``.ipynb_checkpoints/`` and ``.DS_Store`` plus the .gitignore-style ``exclude``
        patterns; ``include`` patterns bring paths back. A lone model file such as
        ``model.safetensors`` is refused unless ``as_tar`` sends it as a one-member tar.

        ``chunk_size`` takes bytes or a text such as ``"16MiB"``; it and ``concurrency``
        (``"auto"`` or a number) obey the same bounds as the settings. Without
        ``concurrency`` the client's one controller paces this import together with every
        other transfer of the client. ``job_timeout`` is a hard deadline for the
        server's job after the upload (the upload itself is bounded by retries and the
        stall timeout). With ``resume`` an interrupted import continues from its journal.
        ``checksum=False`` skips the SHA-256 of what is sent (``ImportResult.sha256`` is
        then None); without it the client's setting decides (on by default).
        """
        settings = self._transport.settings.replace(
            chunk_size=chunk_size, concurrency=concurrency, checksum=checksum
        )
        return await import_file(
            self._files,
            self._dock,
            settings,
            path,
            pacer=self._pacer_for(settings),
            is_adapter=is_adapter,
            chunk_size_given=chunk_size is not None,
            on_progress=on_progress,
            resume=resume,
            wait=wait,
            job_timeout=job_timeout,
            exclude=exclude,
            include=include,
            as_tar=as_tar,
            on_done=self._record_import,
        )

    async def _record_import(
        self, path: Path, fingerprint: Fingerprint, result: ImportResult
    ) -> None:
        """A completed import's ledger row (a ledger that cannot be written only warns)."""
        settings = self._transport.settings
        await note_transfer(
            settings.state_dir, import_entry(settings.host, path, fingerprint, result)
        )

    async def export_to_file(
        self,
        model_id: str,
        dest: str | os.PathLike[str],
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        expected_sha256: str | None = None,
        ranges: int | None = None,
        wait_for_lock: bool = False,
    ) -> ExportResult:
        """Start an export, wait for its job (``timeout``: hard deadline), download to ``dest``.

        A folder ``dest`` means ``dest/<modelId>.tar``. ``expected_sha256`` fails the
        download with IntegrityError on a mismatch (nothing kept); ``ranges`` pins how many
        Range requests run at once for a large export (by default the client's concurrency
        controller decides, shared with its other transfers); ``wait_for_lock`` waits for
        another run downloading to the same ``dest`` instead of raising LockedError.
        """
        fetch = await _Fetch.checked(dest, model_id, expected_sha256, ranges, wait_for_lock)
        started = time.monotonic()
        tracker = ProgressTracker(on_progress)
        tracker.phase(Phase.PROCESSING, message="exporting on the server")
        job = await self.export(model_id)
        return await self._finish_export(job, fetch, timeout, tracker, started, model_id)

    async def download_export(
        self,
        dock_status_id: str,
        dest: str | os.PathLike[str],
        *,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        expected_sha256: str | None = None,
        ranges: int | None = None,
        wait_for_lock: bool = False,
    ) -> ExportResult:
        """Download the file of an export started earlier (``export``, CLI ``--no-wait``).

        Waits for the job ``dock_status_id`` first while it still runs (``timeout``: hard
        deadline). A job that is not an export is a ConfigurationError. The other options
        are those of :meth:`export_to_file`.
        """
        normalise_sha256(expected_sha256)  # a bad value fails before any request
        started = time.monotonic()
        tracker = ProgressTracker(on_progress)
        tracker.phase(Phase.PROCESSING, message="waiting for the export job")
        job = await self._dock.get(dock_status_id)
        if job.action is not None and job.action.upper() != "EXPORT":
            raise ConfigurationError(
                f"job {dock_status_id} is an {job.action} job, not an export; "
                "give the dockStatusId that `export --no-wait` printed"
            )
        model_id = job.model_id or dock_status_id
        fetch = await _Fetch.checked(dest, model_id, expected_sha256, ranges, wait_for_lock)
        return await self._finish_export(job, fetch, timeout, tracker, started, model_id)

    async def _finish_export(
        self,
        job: JobDocument,
        fetch: _Fetch,
        timeout: float | None,
        tracker: ProgressTracker,
        started: float,
        model_id: str,
    ) -> ExportResult:
        final = await self._await(
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
        settings = self._transport.settings
        pacer = self._pacer_for(settings.replace(concurrency=fetch.ranges))
        result = await download_file(
            self._transport,
            url,
            fetch.target,
            model_id=model_id,
            ranges=pacer.workers,
            pacer=pacer,
            expected_sha256=fetch.expected_sha256,
            wait_for_lock=fetch.wait_for_lock,
            on_bytes=tracker.add_bytes,
            on_total=lambda total: tracker.update(bytes_total=total),
            on_held=lambda held: tracker.phase(Phase.DOWNLOADING, bytes_done=held),
            block_size=self._transport.settings.read_block_size,
        )
        tracker.phase(Phase.DONE, bytes_done=result.bytes, bytes_total=result.bytes)
        exported = ExportResult(
            model_id=final.model_id or model_id,
            dock_status_id=final.dock_status_id,
            path=fetch.target,
            bytes=result.bytes,
            seconds=time.monotonic() - started,
            resumed_from=result.resumed_from,
            sha256=result.sha256,
        )
        await self._record_export(exported)
        return exported

    async def _record_export(self, exported: ExportResult) -> None:
        """A completed export's ledger row (a ledger that cannot be written only warns)."""
        settings = self._transport.settings
        entry = export_entry(
            settings.host,
            model_id=exported.model_id,
            dock_status_id=exported.dock_status_id,
            path=exported.path,
            size=exported.bytes,
            sha256=exported.sha256,
            seconds=exported.seconds,
        )
        await note_transfer(settings.state_dir, entry)

    async def verify(
        self,
        model_id: str,
        path: str | os.PathLike[str],
        *,
        keep_to: str | os.PathLike[str] | None = None,
        timeout: float | None = None,
        local_sha256: str | None = None,
        exclude: Sequence[str] = (),
        include: Sequence[str] = (),
        as_tar: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> VerifyResult:
        """Export ``model_id`` and compare its SHA-256 with the local file ``path``.

        The download is hashed without being written (``keep_to`` saves it as well); the
        local file is hashed meanwhile, unless ``local_sha256`` is given. A mismatch raises
        IntegrityError (``expected``: local, ``actual``: the model's); ``timeout`` is a
        hard deadline for the export job. A folder ``path`` is compared as the tar that
        ``import_file`` sends for it with the same ``exclude``, ``include`` and ``as_tar``.
        """

        async def export(tracker: ProgressTracker) -> JobDocument:
            job = await self.export(model_id)
            return await self._await(
                job,
                timeout,
                lambda doc: tracker.update(
                    job_status=doc.status, job_percentage=doc.percentage_complete
                ),
            )

        return await verify_model(
            self._transport,
            export,
            model_id,
            Path(path),
            keep_to=Path(keep_to) if keep_to is not None else None,
            local_sha256=local_sha256,
            exclude=exclude,
            include=include,
            as_tar=as_tar,
            on_progress=on_progress,
        )

    async def _await(
        self,
        job: JobDocument,
        timeout: float | None,
        on_update: Callable[[JobDocument], None] | None = None,
    ) -> JobDocument:
        if job.dock_status_id is None:
            return job
        return await self._dock.wait(
            job.dock_status_id, timeout=timeout, on_update=on_update, first=job
        )


@dataclass(frozen=True)
class _Fetch:
    """How an export's file is fetched: where to, the SHA-256 expected, ranges, lock wait."""

    target: Path
    expected_sha256: str | None
    ranges: int | None
    wait_for_lock: bool

    @classmethod
    async def checked(
        cls,
        dest: str | os.PathLike[str],
        model_id: str,
        expected_sha256: str | None,
        ranges: int | None,
        wait_for_lock: bool,
    ) -> _Fetch:
        """Validated options: a folder ``dest`` means ``dest/<modelId>.tar``; an unsafe
        destination or a malformed SHA-256 fails here, before any request."""
        if ranges is not None and (isinstance(ranges, bool) or not 1 <= ranges <= 256):
            raise ConfigurationError(f"ranges must be a number from 1 to 256, not {ranges!r}")
        expected = normalise_sha256(expected_sha256)
        name = re.sub(r"[/\\\x00]", "_", model_id) + ".tar"
        target = await asyncio.to_thread(resolve_destination, Path(dest), name)
        return cls(target, expected, ranges, wait_for_lock)
