"""The concurrent chunk uploader behind ``kore.models.import_file``.

How it works:
1. The local file is checked (exists, a regular file, readable, not empty) and planned
   into chunks before any request is sent; its fingerprint is taken in a thread.
2. With ``resume``, the journal of an earlier run is reused when it matches the file,
   the plan and the host and its session has not expired; only unacknowledged chunks
   are sent. Otherwise a session is started and a new journal written.
3. ``concurrency`` worker tasks in an anyio task group take chunks from one shared
   iterator; each chunk is streamed from disk (``FileSlicePayload``) and retried by the
   rulebook alone, with a retry budget shared by the whole upload. A failed attempt's
   bytes are rewound from the progress count. A fatal error (401, a changed file, ...)
   cancels the others at once; when a chunk exhausts its retries no new chunk starts,
   the in-flight ones finish, and :class:`UploadError` names the failed chunks.
4. A session that expires (410, or 404 for a session the server forgot) is replaced once
   by a fresh one. ``complete`` is sent when every chunk is acknowledged; chunks the
   server reports missing are re-sent once, and a 409 that carries the job id counts as
   done. Then the dock-status job is awaited.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from .._body import FileSlice
from .._retry import RetryBudget, is_retryable
from ..errors import (
    BadRequestError,
    ConfigurationError,
    ConflictError,
    FileChangedError,
    GoneError,
    JobFailedError,
    KoreError,
    NotFoundError,
    UploadError,
)
from ..resources.dock_status import DockStatusAPI
from ..resources.files import FilesAPI
from ..settings import Settings
from ..types import JobDocument
from .journal import Fingerprint, Journal, JournalRecord, fingerprint_file, journal_path
from .localfile import check_local_file, file_extension
from .plan import Chunk, ChunkPlan, plan_chunks
from .poll import PollPolicy, wait_for_job
from .progress import Phase, ProgressCallback, ProgressTracker

__all__ = ["ImportResult", "check_local_file", "import_file"]


log = logging.getLogger("kore_models.upload")


@dataclass(frozen=True)
class ImportResult:
    """What an import did: ids, the final job status, and what it cost."""

    model_id: str | None
    dock_status_id: str | None
    session_id: str
    status: str | None
    bytes: int
    chunks: int
    chunks_sent: int
    chunks_resumed: int
    retries: int
    seconds: float
    resumed: bool
    job: JobDocument | None


class _SessionGone(Exception):
    """The upload session expired or was forgotten by the server."""


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first real error in a (nested) exception group, cancellations last."""
    leaves: list[BaseException] = []

    def collect(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                collect(inner)
        else:
            leaves.append(exc)

    collect(group)
    real = [e for e in leaves if not isinstance(e, asyncio.CancelledError)]
    return (real or leaves or [group])[0]


def _job_id_in(body: Any) -> str | None:
    sources = [body]
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        sources.extend(body["errors"])
    for source in sources:
        if isinstance(source, dict):
            for key in ("dockStatusId", "dock-statusId", "dockstatusId"):
                if isinstance(source.get(key), str):
                    return str(source[key])
    return None


def _missing_chunks_in(body: Any) -> list[int]:
    sources = [body]
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        sources.extend(body["errors"])
    for source in sources:
        if isinstance(source, dict) and isinstance(source.get("missingChunks"), list):
            return [int(n) for n in source["missingChunks"] if str(n).isdigit()]
    return []


class _Upload:
    """One import in progress; see the module docstring."""

    def __init__(
        self,
        files: FilesAPI,
        settings: Settings,
        path: Path,
        plan: ChunkPlan,
        fingerprint: Fingerprint,
        journal: Journal,
        tracker: ProgressTracker,
        concurrency: int,
        is_adapter: bool,
    ):
        self.files = files
        self.settings = settings
        self.path = path
        self.plan = plan
        self.fingerprint = fingerprint
        self.journal = journal
        self.tracker = tracker
        self.concurrency = concurrency
        self.is_adapter = is_adapter
        budget = settings.upload_retry_budget or max(48, 4 * concurrency, plan.total_chunks // 2)
        self.budget = RetryBudget(budget)
        self.chunks_sent = 0
        self._flush_wanted = asyncio.Event()

    @property
    def record(self) -> JournalRecord:
        assert self.journal.record is not None
        return self.journal.record

    async def start_session(self) -> None:
        session = await self.files.start_session(
            file_context="model",
            total_chunks=self.plan.total_chunks,
            file_extension=file_extension(self.path),
            file_name=self.path.name,
            file_size=self.plan.file_size,
            is_adapter=self.is_adapter,
        )
        expires = session.expiration_date
        self.journal.record = JournalRecord(
            host=self.settings.host,
            file_path=str(self.path.resolve()),
            fingerprint=self.fingerprint,
            chunk_size=self.plan.chunk_size,
            total_chunks=self.plan.total_chunks,
            is_adapter=self.is_adapter,
            session_id=session.session_id,
            model_id=session.model_id,
            expires_at=expires.isoformat() if expires else None,
        )
        await self.journal.save(durable=True)
        log.info("started session for %s (%d chunks)", self.path.name, self.plan.total_chunks)

    async def _flusher(self) -> None:
        while True:
            await self._flush_wanted.wait()
            self._flush_wanted.clear()
            await self.journal.save()

    async def _send(self, chunk: Chunk) -> None:
        sent = 0

        def on_bytes(count: int) -> None:
            nonlocal sent
            sent += count
            self.tracker.add_bytes(count)

        def on_retry(exc: BaseException, wait: float) -> None:
            nonlocal sent
            self.tracker.rewind_bytes(sent)
            sent = 0
            self.tracker.retried()

        body = FileSlice(
            self.path,
            chunk.offset,
            chunk.length,
            file_size=self.fingerprint.size,
            mtime_ns=self.fingerprint.mtime_ns,
        )
        try:
            ack = await self.files.upload_chunk(
                self.record.session_id,
                chunk.number,
                body,
                filename=self.path.name,
                on_bytes=on_bytes,
                budget=self.budget,
                on_retry=on_retry,
            )
        except BaseException:
            self.tracker.rewind_bytes(sent)
            raise
        if ack.chunk_number != chunk.number:
            log.warning("chunk %d was acknowledged as %d", chunk.number, ack.chunk_number)
        self.record.acknowledged.add(chunk.number)
        self.chunks_sent += 1
        self.tracker.chunk_done()
        self._flush_wanted.set()

    async def send_chunks(self, chunks: list[Chunk]) -> None:
        """Send ``chunks`` with at most ``concurrency`` in flight; see the module docstring."""
        pending: Iterator[Chunk] = iter(chunks)
        failures: dict[int, BaseException] = {}

        async def worker() -> None:
            for chunk in pending:
                if failures:
                    return
                try:
                    await self._send(chunk)
                except (GoneError, NotFoundError) as exc:
                    raise _SessionGone(str(exc)) from exc
                except KoreError as exc:
                    if not is_retryable(exc):
                        raise
                    failures[chunk.number] = exc
                    return

        try:
            async with anyio.create_task_group() as outer:
                outer.start_soon(self._flusher)
                async with anyio.create_task_group() as workers:
                    for _ in range(min(self.concurrency, len(chunks))):
                        workers.start_soon(worker)
                outer.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise _first_error(group) from None
        finally:
            with anyio.CancelScope(shield=True):
                await self.journal.save()
        if failures:
            numbers = sorted(failures)
            first = failures[numbers[0]]
            raise UploadError(
                f"{len(numbers)} chunk(s) of {self.path.name} failed after retries "
                f"({self.budget.used} retries used); the last error was: {first}. "
                "Run the same import again to resume from the acknowledged chunks.",
                failed_chunks=numbers,
                session_id=self.record.session_id,
            ) from first

    async def complete(self) -> JobDocument:
        """Complete the session, re-sending chunks the server reports missing (once)."""
        for attempt in (1, 2):
            try:
                return await self.files.complete(self.record.session_id)
            except ConflictError as exc:
                job_id = _job_id_in(exc.body)
                if job_id is None:
                    raise
                return JobDocument.model_validate(
                    {"dockStatusId": job_id, "modelId": self.record.model_id}
                )
            except (GoneError, NotFoundError) as exc:
                raise _SessionGone(str(exc)) from exc
            except BadRequestError as exc:
                missing = [n for n in _missing_chunks_in(exc.body) if n < self.plan.total_chunks]
                if attempt == 2 or not missing:
                    raise
                log.warning("the server is missing chunks %s; sending them again", missing)
                self.record.acknowledged.difference_update(missing)
                await self.send_chunks([self.plan.chunks[n] for n in missing])
        raise AssertionError("unreachable")


async def import_file(
    files: FilesAPI,
    dock_status: DockStatusAPI,
    settings: Settings,
    path: str | os.PathLike[str],
    *,
    is_adapter: bool = False,
    chunk_size: int | None = None,
    concurrency: int | None = None,
    on_progress: ProgressCallback | None = None,
    resume: bool = True,
    wait: bool = True,
    timeout: float | None = None,
    poll_policy: PollPolicy | None = None,
) -> ImportResult:
    """Upload ``path`` in chunks, complete the session and (with ``wait``) await the job.

    ``timeout`` bounds the wait for the server's job, not the upload, which is bounded by
    the retry rulebook and the stall timeout instead.
    """
    started = time.monotonic()
    file_path = Path(os.fspath(path))
    if concurrency is not None and (isinstance(concurrency, bool) or concurrency < 1):
        raise ConfigurationError(f"concurrency must be at least 1, not {concurrency!r}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or chunk_size < 1):
        raise ConfigurationError(f"chunk size must be at least 1 byte, not {chunk_size!r}")
    file_path = await anyio.to_thread.run_sync(file_path.expanduser)
    size = await anyio.to_thread.run_sync(check_local_file, file_path)
    plan = plan_chunks(
        size,
        chunk_size or settings.chunk_size,
        max_chunks=settings.max_chunks,
        max_chunk_size=max(settings.max_chunk_size, chunk_size or 0),
    )
    tracker = ProgressTracker(on_progress, bytes_total=size, chunks_total=plan.total_chunks)
    tracker.phase(Phase.PLANNING, message=f"{plan.total_chunks} chunks of {plan.chunk_size} B")
    fingerprint = await anyio.to_thread.run_sync(fingerprint_file, file_path)
    journal = Journal(journal_path(settings.state_dir, settings.host, file_path))
    record = await anyio.to_thread.run_sync(journal.load) if resume else None
    if record is not None and not (
        record.host == settings.host
        and record.fingerprint == fingerprint
        and record.chunk_size == plan.chunk_size
        and record.total_chunks == plan.total_chunks
        and record.is_adapter == is_adapter
        and (record.dock_status_id is not None or not record.expired(datetime.now(UTC)))
    ):
        log.info(
            "the journal for %s does not match (changed file or expired); starting afresh",
            file_path,
        )
        record = None
    resumed = record is not None
    journal.record = record
    upload = _Upload(
        files,
        settings,
        file_path,
        plan,
        fingerprint,
        journal,
        tracker,
        concurrency or settings.concurrency,
        is_adapter,
    )
    chunks_resumed = len(record.acknowledged) if record else 0
    job: JobDocument | None = None
    if record is not None and record.dock_status_id is not None:
        job = JobDocument.model_validate(
            {"dockStatusId": record.dock_status_id, "modelId": record.model_id}
        )
    restarts_left = 1
    while job is None:
        if journal.record is None:
            await upload.start_session()
        done = upload.record.acknowledged
        tracker.phase(
            Phase.UPLOADING,
            bytes_done=sum(c.length for c in plan.chunks if c.number in done),
            chunks_done=len(done),
        )
        try:
            await upload.send_chunks([c for c in plan.chunks if c.number not in done])
            now_fp = await anyio.to_thread.run_sync(fingerprint_file, file_path)
            if now_fp != fingerprint:
                raise FileChangedError(
                    f"{file_path} changed while it was being uploaded; the import was stopped"
                )
            tracker.phase(Phase.COMPLETING)
            job = await upload.complete()
        except _SessionGone as exc:
            if restarts_left == 0:
                raise UploadError(
                    f"the upload session of {file_path.name} expired again ({exc})",
                    failed_chunks=[],
                ) from None
            restarts_left -= 1
            log.warning("the upload session expired (%s); starting a fresh session", exc)
            journal.discard()
            resumed = False
            chunks_resumed = 0
    upload.record.dock_status_id = job.dock_status_id
    upload.record.model_id = job.model_id or upload.record.model_id
    await journal.save(durable=True)
    session_id = upload.record.session_id
    model_id = upload.record.model_id
    final: JobDocument | None = job
    if wait and job.dock_status_id is not None:
        tracker.phase(
            Phase.PROCESSING, job_status=job.status, job_percentage=job.percentage_complete
        )
        try:
            final = await wait_for_job(
                dock_status,
                job.dock_status_id,
                policy=poll_policy,
                timeout=timeout,
                first=job if job.is_terminal else None,
                on_update=lambda doc: tracker.update(
                    job_status=doc.status, job_percentage=doc.percentage_complete
                ),
            )
        except JobFailedError:
            journal.discard()
            raise
        journal.discard()
    elif not wait:
        journal.discard()
    tracker.phase(Phase.DONE, job_status=final.status if final else None)
    return ImportResult(
        model_id=(final.model_id if final and final.model_id else model_id),
        dock_status_id=job.dock_status_id,
        session_id=session_id,
        status=final.status if final else None,
        bytes=size,
        chunks=plan.total_chunks,
        chunks_sent=upload.chunks_sent,
        chunks_resumed=chunks_resumed,
        retries=tracker.event.retries,
        seconds=time.monotonic() - started,
        resumed=resumed,
        job=final,
    )
