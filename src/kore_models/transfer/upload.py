"""The concurrent chunk uploader behind ``kore.models.import_file``.

How it works:
1. The local file is checked (exists, a regular file, readable, not empty) and planned
   into chunks before any request is sent; its fingerprint is taken in a thread. A
   folder is listed and checked instead and sent as a tar generated on the fly
   (:mod:`.source`, :mod:`.tarstream`): chunks are byte ranges of that tar.
2. With ``resume``, the journal of an earlier run is reused when it matches the file,
   the plan and the host and its session has not expired; only unacknowledged chunks
   are sent. Otherwise a session is started and a new journal written.
3. Worker tasks in an asyncio task group take chunks from one shared iterator; each
   attempt holds a slot of the client's concurrency controller (``concurrency="auto"``
   finds the level, see :mod:`kore_models.transfer.pacing`) and obeys its rate cap.
   Each chunk is streamed from disk (``FileSlicePayload``) and retried by the rulebook
   alone, with a retry budget shared by the whole upload. A failed attempt's
   bytes are rewound from the progress count. A fatal error (401, a changed file, ...)
   cancels the others at once; when a chunk exhausts its retries no new chunk starts,
   the in-flight ones finish, and :class:`UploadError` names the failed chunks. A
   thread hashes what is sent, in order, trailing the chunks' reads (:mod:`.hashing`);
   its SHA-256 is awaited before the last fingerprint check and ``complete``.
4. A session that expires (410, or 404 for a session the server forgot) is replaced once
   by a fresh one. ``complete`` is sent when every chunk is acknowledged; chunks the
   server reports missing are re-sent once, and a 409 that carries the job id counts as
   done. Then the dock-status job is awaited.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import JobFailedError, KoreError, UploadError
from ..results import ImportResult
from ..settings import Settings
from ..types import JobDocument
from .hashing import NoHashing, TrailingHasher, upload_hasher
from .journal import Fingerprint, Journal, JournalRecord, journal_path
from .local_state import RunLock, check_writable_dir
from .pacing import Pacer
from .plan import ChunkPlan, plan_chunks
from .progress import Phase, ProgressCallback, ProgressTracker
from .sender import ChunkSender, SessionGone
from .source import UploadSource, prepare_source

if TYPE_CHECKING:
    from ..resources.dock_status import DockStatus
    from ..resources.files import Files

__all__ = ["ImportDone", "import_file"]

ImportDone = Callable[[Path, Fingerprint, ImportResult], Awaitable[None]]
"""Told of each completed import: the file, the fingerprint it was sent with, the result."""


log = logging.getLogger("kore_models.upload")


async def import_file(
    files: Files,
    dock_status: DockStatus,
    settings: Settings,
    path: str | os.PathLike[str],
    *,
    is_adapter: bool = False,
    chunk_size_given: bool = False,
    on_progress: ProgressCallback | None = None,
    resume: bool = True,
    wait: bool = True,
    job_timeout: float | None = None,
    exclude: Sequence[str] = (),
    include: Sequence[str] = (),
    as_tar: bool = False,
    on_done: ImportDone | None = None,
    pacer: Pacer | None = None,
) -> ImportResult:
    """Upload ``path`` in chunks, complete the session and (with ``wait``) await the job.

    Chunk size and concurrency come from ``settings`` (already validated). A chunk size
    the caller gave explicitly may exceed ``max_chunk_size``; the planner only raises the
    size when the file needs more than ``max_chunks`` chunks. ``job_timeout`` is a hard
    deadline for the server's job, not the upload, which is bounded by the retry rulebook
    and the stall timeout instead. A folder (or, with ``as_tar``, one file) is sent as a
    tar; ``exclude``/``include`` are its .gitignore-style patterns. ``on_done`` is awaited
    with the completed import (the client records it in the ledger).
    """
    started = time.monotonic()
    file_path = Path(os.fspath(path))
    file_path = await asyncio.to_thread(file_path.expanduser)
    source = await asyncio.to_thread(
        functools.partial(
            prepare_source, file_path, exclude=exclude, include=include, as_tar=as_tar
        )
    )
    size = source.size
    pacer = pacer or Pacer.from_settings(settings)
    plan = plan_chunks(
        size,
        settings.chunk_size,
        max_chunks=settings.max_chunks,
        max_chunk_size=max(settings.max_chunk_size, settings.chunk_size if chunk_size_given else 0),
    )
    tracker = ProgressTracker(on_progress, bytes_total=size, chunks_total=plan.total_chunks)
    if plan.chunk_size != settings.chunk_size:
        tracker.phase(
            Phase.PLANNING,
            message=f"chunk size raised from {_mib(settings.chunk_size)} to "
            f"{_mib(plan.chunk_size)} so that the file fits in {settings.max_chunks} chunks",
        )
    tracker.phase(Phase.PLANNING, message=f"{plan.total_chunks} chunks of {_mib(plan.chunk_size)}")
    try:
        return await _run_import(
            files,
            dock_status,
            settings,
            source,
            plan,
            tracker,
            is_adapter=is_adapter,
            resume=resume,
            wait=wait,
            job_timeout=job_timeout,
            started=started,
            on_done=on_done,
            pacer=pacer,
        )
    except KoreError as exc:
        tracker.phase(Phase.FAILED, message=str(exc))
        raise


async def _run_import(
    files: Files,
    dock_status: DockStatus,
    settings: Settings,
    source: UploadSource,
    plan: ChunkPlan,
    tracker: ProgressTracker,
    *,
    is_adapter: bool,
    resume: bool,
    wait: bool,
    job_timeout: float | None,
    started: float,
    on_done: ImportDone | None,
    pacer: Pacer,
) -> ImportResult:
    """The import after planning: check the state folder, lock, then the import itself."""
    file_path = source.path
    journal = Journal(journal_path(settings.state_dir, settings.host, file_path))
    # Before any request: a journal that cannot be written would leave a session and a
    # model on the server that no later run can find (an orphan on every attempt).
    await asyncio.to_thread(
        lambda: check_writable_dir(
            journal.path.parent,
            what="state folder",
            hint="point KORE_STATE_DIR (state_dir=... in Python) at a writable folder",
        )
    )
    async with RunLock(journal.path, doing=f"importing {file_path} to {settings.host}"):
        with upload_hasher(source, checksum=settings.checksum) as hasher:
            return await _import_locked(
                files,
                dock_status,
                settings,
                source,
                plan,
                tracker,
                journal,
                hasher,
                is_adapter=is_adapter,
                resume=resume,
                wait=wait,
                job_timeout=job_timeout,
                started=started,
                on_done=on_done,
                pacer=pacer,
            )


async def _import_locked(
    files: Files,
    dock_status: DockStatus,
    settings: Settings,
    source: UploadSource,
    plan: ChunkPlan,
    tracker: ProgressTracker,
    journal: Journal,
    hasher: TrailingHasher | NoHashing,
    *,
    is_adapter: bool,
    resume: bool,
    wait: bool,
    job_timeout: float | None,
    started: float,
    on_done: ImportDone | None,
    pacer: Pacer,
) -> ImportResult:
    """Resume or start, send, complete, wait (the journal's lock is held).

    ``hasher`` hashes the file in order as the chunks are read (see transfer/hashing.py);
    its digest is awaited before the file's fingerprint is checked and ``complete`` sent.
    """
    size = plan.file_size
    file_path = source.path
    fingerprint = await asyncio.to_thread(source.fingerprint)
    record = await asyncio.to_thread(journal.load) if resume else None
    live = record is not None and (
        record.host == settings.host
        and record.fingerprint == fingerprint
        and record.is_adapter == is_adapter
        and (record.dock_status_id is not None or not record.expired(datetime.now(UTC)))
    )
    if record is not None and live and record.chunk_size != plan.chunk_size:
        # a live journal wins over a new chunk size: the chunks on the server stay useful
        tracker.phase(
            Phase.PLANNING,
            message=f"chunk size {_mib(plan.chunk_size)} ignored: the upload being resumed "
            f"uses {_mib(record.chunk_size)} (--no-resume starts over with the new size)",
        )
        plan = _replan(plan, record.chunk_size, settings)
        tracker.update(chunks_total=plan.total_chunks)
    if record is not None and not (
        live and record.chunk_size == plan.chunk_size and record.total_chunks == plan.total_chunks
    ):
        log.info(
            "the journal for %s does not match (changed file or expired); starting afresh",
            file_path,
        )
        record = None
    resumed = record is not None
    journal.record = record
    upload = ChunkSender(
        files,
        settings,
        source,
        plan,
        fingerprint,
        journal,
        tracker,
        pacer,
        is_adapter,
    )
    chunks_resumed = len(record.acknowledged) if record else 0
    if record is not None:
        tracker.phase(Phase.PLANNING, message=_resume_note(record, plan))
    upload.on_read = hasher.mark_read
    for chunk in plan.chunks:  # sent by an earlier run: the hasher reads them itself
        if record is not None and chunk.number in record.acknowledged:
            hasher.mark_read(chunk.offset, chunk.offset + chunk.length)
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
            await hasher.digest()
            await asyncio.to_thread(source.check_unchanged, fingerprint)
            tracker.phase(Phase.COMPLETING)
            job = await upload.complete()
        except SessionGone as exc:
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
    hashed = await hasher.digest()
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
            final = await dock_status.wait(
                job.dock_status_id,
                timeout=job_timeout,
                first=job,
                on_update=lambda doc: tracker.update(
                    job_status=doc.status, job_percentage=doc.percentage_complete
                ),
            )
        except JobFailedError:
            journal.discard()
            raise
        journal.discard()
    else:  # --no-wait, or a completion without a job id: nothing is left to resume
        journal.discard()
    tracker.phase(Phase.DONE, job_status=final.status if final else None)
    result = ImportResult(
        model_id=(final.model_id if final and final.model_id else model_id),
        dock_status_id=job.dock_status_id,
        session_id=session_id,
        status=final.status if final else None,
        bytes=size,
        chunks=plan.total_chunks,
        chunk_size=plan.chunk_size,
        chunks_sent=upload.chunks_sent,
        bytes_sent=upload.bytes_sent,
        chunks_resumed=chunks_resumed,
        retries=tracker.event.retries,
        peak_concurrency=upload.peak_concurrency,
        final_concurrency=upload.final_concurrency,
        seconds=time.monotonic() - started,
        resumed=resumed,
        job=final,
        sha256=hashed.sha256 if hashed is not None else None,
    )
    if on_done is not None:
        await on_done(file_path, fingerprint, result)
    return result


def _mib(count: int) -> str:
    """A chunk size in binary units, as the CLI prints sizes: ``16 MiB``, ``256 KiB``."""
    for unit, size in (("MiB", 2**20), ("KiB", 2**10)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count / 2**20:.2f} MiB" if count >= 2**20 else f"{count} B"


def _replan(plan: ChunkPlan, chunk_size: int, settings: Settings) -> ChunkPlan:
    """``plan``'s file cut into ``chunk_size`` chunks (the size of a journal being resumed)."""
    return plan_chunks(
        plan.file_size,
        chunk_size,
        max_chunks=max(settings.max_chunks, -(-plan.file_size // chunk_size)),
        max_chunk_size=max(settings.max_chunk_size, chunk_size),
    )


def _resume_note(record: JournalRecord, plan: ChunkPlan) -> str:
    """``resuming: 12 of 40 chunks already on the server (session s-1 expires ...)``."""
    if record.dock_status_id is not None:
        return f"resuming: the upload was completed; awaiting job {record.dock_status_id}"
    expiry = f", session expires {record.expires_at}" if record.expires_at else ""
    return (
        f"resuming: {len(record.acknowledged)} of {plan.total_chunks} chunks already on the "
        f"server (session {record.session_id}{expiry})"
    )
