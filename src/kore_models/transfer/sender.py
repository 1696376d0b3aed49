"""Sending one import's chunks: the session, the worker pool, and the complete call.

Used by :mod:`kore_models.transfer.upload`, whose docstring tells how an import works.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from .._retry import RetryBudget, is_retryable
from ..errors import (
    BadRequestError,
    ConflictError,
    GoneError,
    KoreError,
    NotFoundError,
    UploadError,
)
from ..settings import Settings
from ..types import JobDocument
from .journal import Fingerprint, Journal, JournalRecord
from .pacing import Decision, Pacer
from .plan import Chunk, ChunkPlan
from .progress import ProgressTracker
from .source import UploadSource

if TYPE_CHECKING:
    from ..resources.files import Files

__all__ = ["ChunkSender", "SessionGone"]

log = logging.getLogger("kore_models.upload")


class SessionGone(Exception):
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


def _still_completing(exc: ConflictError) -> bool:
    """The 409 says an earlier complete of this session is still running."""
    text = f"{exc.code or ''} {exc.message}".lower()
    return "completing" in text or "in progress" in text or "being completed" in text


class ChunkSender:
    """Sends the chunks of one import and completes its session (see upload.py)."""

    def __init__(
        self,
        files: Files,
        settings: Settings,
        source: UploadSource,
        plan: ChunkPlan,
        fingerprint: Fingerprint,
        journal: Journal,
        tracker: ProgressTracker,
        pacer: Pacer,
        is_adapter: bool,
    ):
        self.files = files
        self.settings = settings
        self.source = source
        self.path = source.path
        self.plan = plan
        self.fingerprint = fingerprint
        self.journal = journal
        self.tracker = tracker
        self.pacer = pacer
        self.is_adapter = is_adapter
        workers = pacer.workers
        budget = settings.upload_retry_budget or max(48, 4 * workers, plan.total_chunks // 2)
        self.budget = RetryBudget(budget)
        self.chunks_sent = 0
        self.bytes_sent = 0
        self.peak_concurrency = self.final_concurrency = pacer.controller.limit
        self._flush_wanted = asyncio.Event()
        self.on_read: Callable[[int, int], None] | None = None
        """Told each ``(start, end)`` byte range of the file read for sending (the hasher)."""

    @property
    def record(self) -> JournalRecord:
        assert self.journal.record is not None
        return self.journal.record

    async def start_session(self) -> None:
        session = await self.files.start_session(
            file_context="model",
            total_chunks=self.plan.total_chunks,
            file_extension=self.source.extension,
            file_name=self.source.upload_name,
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
            if self.on_read is not None:
                self.on_read(chunk.offset + sent - count, chunk.offset + sent)

        def on_retry(exc: BaseException, wait: float) -> None:
            nonlocal sent
            self.tracker.rewind_bytes(sent)
            sent = 0
            self.tracker.retried()

        body = self.source.body(chunk, self.fingerprint)
        try:
            ack = await self.files.upload_chunk(
                self.record.session_id,
                chunk.number,
                body,
                filename=self.source.upload_name,
                on_bytes=on_bytes,
                budget=self.budget,
                on_retry=on_retry,
                block_size=self._block_size,
                pace=self.pacer,
                throttle=self.pacer.throttle if self.pacer.bucket is not None else None,
            )
        except BaseException:
            self.tracker.rewind_bytes(sent)
            raise
        if ack.chunk_number != chunk.number:
            log.warning("chunk %d was acknowledged as %d", chunk.number, ack.chunk_number)
        self.record.acknowledged.add(chunk.number)
        self.chunks_sent += 1
        self.bytes_sent += chunk.length
        self.tracker.chunk_done()
        self._flush_wanted.set()

    def _block_size(self) -> int:
        """Read-block size for an attempt starting now: the buffer budget shared by the
        requests the controller allows at this moment (never more than a rate-cap piece)."""
        block = self.settings.block_size_for(self.pacer.controller.limit)
        return min(block, self.pacer.piece_size or block)

    def _note_concurrency(self, limit: int) -> None:
        self.peak_concurrency = max(self.peak_concurrency, limit)
        self.final_concurrency = limit
        self.tracker.update(concurrency=limit, force=False)

    def _on_decision(self, decision: Decision) -> None:
        self.peak_concurrency = max(self.peak_concurrency, decision.new)
        self.final_concurrency = decision.new
        why = f"concurrency {decision.old} -> {decision.new}: {decision.reason}"
        self.tracker.decided(decision.new, why)

    async def send_chunks(self, chunks: list[Chunk]) -> None:
        """Send ``chunks``, as many at once as the pacer allows; see upload.py's docstring."""
        pending: Iterator[Chunk] = iter(chunks)
        failures: dict[int, BaseException] = {}

        async def worker() -> None:
            for chunk in pending:
                if failures:
                    return
                try:
                    await self._send(chunk)
                except (GoneError, NotFoundError) as exc:
                    raise SessionGone(str(exc)) from exc
                except KoreError as exc:
                    if not is_retryable(exc):
                        raise
                    failures[chunk.number] = exc
                    return

        controller = self.pacer.controller
        self._note_concurrency(controller.limit)
        controller.add_listener(self._on_decision)
        try:
            async with asyncio.TaskGroup() as group:
                flusher = group.create_task(self._flusher())
                workers = [
                    group.create_task(worker()) for _ in range(min(self.pacer.workers, len(chunks)))
                ]
                await asyncio.wait(workers)
                flusher.cancel()  # a cancelled flusher is no failure of the group
        except BaseExceptionGroup as group_error:
            raise _first_error(group_error) from None
        finally:
            controller.remove_listener(self._on_decision)
            # shielded: the acknowledged chunks reach the journal even when cancelled
            await asyncio.shield(self.journal.save())
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
        """Complete the session, re-sending chunks the server reports missing (once).

        A 409 that carries the job id means an earlier attempt completed it: that job is
        the import's. A 409 saying the session is still being completed (an earlier
        attempt whose answer was lost) is waited out, then asked again.
        """
        for attempt in (1, 2):
            try:
                return await self._complete_through_conflicts()
            except (GoneError, NotFoundError) as exc:
                raise SessionGone(str(exc)) from exc
            except BadRequestError as exc:
                missing = [n for n in _missing_chunks_in(exc.body) if n < self.plan.total_chunks]
                if attempt == 2 or not missing:
                    raise
                log.warning("the server is missing chunks %s; sending them again", missing)
                self.record.acknowledged.difference_update(missing)
                await self.send_chunks([self.plan.chunks[n] for n in missing])
        raise AssertionError("unreachable")

    async def _complete_through_conflicts(self) -> JobDocument:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.settings.retry_deadline
        pause = 0.25
        while True:
            try:
                return await self.files.complete(self.record.session_id)
            except ConflictError as exc:
                job_id = _job_id_in(exc.body)
                if job_id is not None:
                    return JobDocument.model_validate(
                        {"dockStatusId": job_id, "modelId": self.record.model_id}
                    )
                if not _still_completing(exc) or loop.time() + pause > give_up:
                    raise
                log.info("the session is still being completed; asking again in %.2fs", pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
