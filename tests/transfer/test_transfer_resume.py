"""Crash-safe resume, session expiry and cancellation of an import in flight."""

from __future__ import annotations

import asyncio
import gc
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from kore_models import ImportResult, KoreClient
from kore_models.errors import FileChangedError, UploadError
from kore_models.transfer.journal import Journal, JournalRecord, journal_path
from kore_models.transfer.progress import ProgressEvent

if TYPE_CHECKING:
    from tests.support.transfer import ClientFactory, EmuControl, FileMaker

CHUNK = 64 * 1024
TOTAL = 30


class ChunksReached:
    """A progress callback that sets an event once ``chunks_done`` reaches ``k``."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.reached = asyncio.Event()
        self.events: list[ProgressEvent] = []

    def __call__(self, event: ProgressEvent) -> None:
        self.events.append(event)
        if event.chunks_done >= self.k:
            self.reached.set()


async def _until_reached(progress: ChunksReached, task: asyncio.Task[ImportResult]) -> None:
    """Wait until ``progress`` saw k chunks (or the import ended first: a failure)."""
    waiter = asyncio.create_task(progress.reached.wait())
    try:
        await asyncio.wait({task, waiter}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    assert progress.reached.is_set(), "the upload never reached k chunks"
    assert not task.done(), "the upload ended before it could be interrupted"


def _journal(kore: KoreClient, source: Path) -> Journal:
    return Journal(journal_path(kore.settings.state_dir, kore.settings.host, source))


async def _interrupted_import(
    kore: KoreClient, source: Path, *, k: int, concurrency: int = 3
) -> JournalRecord:
    """Start an import, cancel it once ``k`` chunks were acknowledged; return its journal."""
    progress = ChunksReached(k)
    task = asyncio.create_task(
        kore.models.import_file(source, on_progress=progress, concurrency=concurrency)
    )
    await _until_reached(progress, task)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    record = _journal(kore, source).load()
    assert record is not None
    assert k <= len(record.acknowledged) < TOTAL
    return record


async def test_resume_after_a_crash_sends_only_the_missing_chunks(
    clients: ClientFactory, ctl: EmuControl, make_file: FileMaker
) -> None:
    # ~33 ms per 64 KiB chunk on the server: the upload is cancelled well before its end
    await ctl.configure(throughput_bytes_per_second=1_000_000)
    source = make_file(TOTAL * CHUNK - 100)
    record = await _interrupted_import(clients(), source, k=5)
    journal_text = _journal(clients(), source).path.read_text()
    assert clients().settings.api_key.get_secret_value() not in journal_text
    acknowledged = set(record.acknowledged)
    missing = TOTAL - len(acknowledged)
    await ctl.reset_counters()
    await ctl.configure(throughput_bytes_per_second=None)

    # a new client, as after a restart of the process
    result = await clients().models.import_file(source, concurrency=3)

    assert result.resumed is True
    assert result.session_id == record.session_id
    assert result.chunks_resumed == len(acknowledged)
    assert result.chunks_sent == missing
    counters = await ctl.counters()
    assert counters["requests"]["start"] == 0
    # exactly the unacknowledged chunks; a chunk the cancelled run had in flight may still
    # land on the server after the counters were reset (at most one per worker)
    sent = counters["chunk_numbers_received"][record.session_id]
    assert set(sent) == set(range(TOTAL)) - acknowledged
    assert len(sent) <= missing + 3
    assert counters["chunks_received"] <= missing + 3
    await ctl.assert_stored(result.model_id, source)
    assert not _journal(clients(), source).path.exists()


def _overwrite(path: Path, offset: int, data: bytes) -> None:
    """Change bytes in place (same size) and move the mtime on."""
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))


async def test_a_changed_file_starts_a_fresh_session(
    clients: ClientFactory, ctl: EmuControl, make_file: FileMaker
) -> None:
    await ctl.configure(throughput_bytes_per_second=1_000_000)
    source = make_file(TOTAL * CHUNK)
    record = await _interrupted_import(clients(), source, k=3)
    # same size, different bytes in the middle, a new mtime
    await asyncio.to_thread(_overwrite, source, CHUNK * 2 + 17, b"changed!")
    await ctl.reset_counters()
    await ctl.configure(throughput_bytes_per_second=None)

    result = await clients().models.import_file(source)

    assert result.resumed is False
    assert result.chunks_resumed == 0
    assert result.session_id != record.session_id
    assert result.chunks_sent == TOTAL
    counters = await ctl.counters()
    assert counters["requests"]["start"] == 1
    assert sorted(counters["chunk_numbers_received"][result.session_id]) == list(range(TOTAL))
    await ctl.assert_stored(result.model_id, source)


async def test_only_touching_the_file_also_starts_afresh(
    clients: ClientFactory, ctl: EmuControl, make_file: FileMaker
) -> None:
    await ctl.configure(throughput_bytes_per_second=1_000_000)
    source = make_file(TOTAL * CHUNK)
    record = await _interrupted_import(clients(), source, k=3)
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    await ctl.configure(throughput_bytes_per_second=None)

    result = await clients().models.import_file(source)

    assert result.resumed is False
    assert result.session_id != record.session_id
    await ctl.assert_stored(result.model_id, source)


async def test_an_expired_journal_session_starts_afresh(
    clients: ClientFactory, ctl: EmuControl, make_file: FileMaker
) -> None:
    await ctl.configure(throughput_bytes_per_second=1_000_000, session_ttl_seconds=600)
    source = make_file(TOTAL * CHUNK)
    record = await _interrupted_import(clients(), source, k=3)
    # the journal says the session expired (the client checks it before sending anything)
    journal = _journal(clients(), source)
    record.expires_at = "2000-01-01T00:00:00.000Z"
    journal.record = record
    await journal.save()
    await ctl.configure(throughput_bytes_per_second=None)
    await ctl.reset_counters()

    result = await clients().models.import_file(source)

    assert result.resumed is False
    assert result.session_id != record.session_id
    received = (await ctl.counters())["chunk_numbers_received"]
    assert sorted(received[result.session_id]) == list(range(TOTAL))
    await ctl.assert_stored(result.model_id, source)


async def test_a_session_that_expires_mid_upload_is_restarted_with_a_fresh_one(
    clients: ClientFactory, ctl: EmuControl, make_file: FileMaker
) -> None:
    await ctl.configure(throughput_bytes_per_second=1_000_000, session_ttl_seconds=3600)
    kore = clients()
    source = make_file(TOTAL * CHUNK)
    progress = ChunksReached(4)
    task = asyncio.create_task(kore.models.import_file(source, on_progress=progress))
    await _until_reached(progress, task)
    first_session = _journal(kore, source).load()
    assert first_session is not None
    await ctl.advance_clock(7200)  # the first session is now expired on the server
    await ctl.configure(throughput_bytes_per_second=None)

    result = await asyncio.wait_for(task, timeout=20)

    assert result.session_id != first_session.session_id
    assert result.resumed is False
    assert result.chunks_sent >= TOTAL
    counters = await ctl.counters()
    assert counters["requests"]["start"] == 2
    assert counters["responses_by_status"].get("410", 0) >= 1
    assert sorted(counters["chunk_numbers_received"][result.session_id]) == list(range(TOTAL))
    await ctl.assert_stored(result.model_id, source)


async def test_a_session_that_keeps_expiring_fails_with_a_clear_upload_error(
    kore: KoreClient, ctl: EmuControl, make_file: FileMaker
) -> None:
    await ctl.configure(session_ttl_seconds=0.000001)
    source = make_file(3 * CHUNK)

    with pytest.raises(UploadError, match="expired"):
        await kore.models.import_file(source)

    counters = await ctl.counters()
    assert counters["requests"]["start"] == 2
    assert counters["requests"]["complete"] == 0


async def test_a_file_changed_during_the_upload_stops_the_import(
    kore: KoreClient, ctl: EmuControl, make_file: FileMaker
) -> None:
    await ctl.configure(throughput_bytes_per_second=1_000_000)
    source = make_file(TOTAL * CHUNK)
    progress = ChunksReached(3)
    task = asyncio.create_task(kore.models.import_file(source, on_progress=progress))
    await _until_reached(progress, task)

    await asyncio.to_thread(_overwrite, source, 5, b"edited")

    with pytest.raises(FileChangedError, match="import was stopped"):
        await asyncio.wait_for(task, timeout=20)
    assert (await ctl.counters())["requests"]["complete"] == 0


def _client_tasks() -> set[asyncio.Task[object]]:
    """Tasks of this loop that are not the in-process emulator's request handlers."""
    mine = set()
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        filename = code.co_filename if code is not None else ""
        if os.sep + "aiohttp" + os.sep + "web_" not in filename:
            mine.add(task)
    return mine


async def test_cancelling_mid_upload_is_quick_clean_and_resumable(
    clients: ClientFactory, ctl: EmuControl, make_file: FileMaker
) -> None:
    await ctl.configure(throughput_bytes_per_second=1_000_000)
    source = make_file(TOTAL * CHUNK)
    before = _client_tasks()
    loop = asyncio.get_running_loop()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with clients() as kore:
            progress = ChunksReached(3)
            task = asyncio.create_task(
                kore.models.import_file(source, on_progress=progress, concurrency=4)
            )
            await _until_reached(progress, task)
            await ctl.configure(throughput_bytes_per_second=1000)  # chunks hang in flight
            started = loop.time()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert loop.time() - started < 1.0
        await asyncio.sleep(0)
        gc.collect()
    leaked = {t for t in _client_tasks() - before if not t.done()} - {asyncio.current_task()}
    assert not leaked, leaked
    unclosed = [w for w in caught if "nclosed" in str(w.message)]
    assert not unclosed, [str(w.message) for w in unclosed]
    record = _journal(kore, source).load()
    assert record is not None
    assert len(record.acknowledged) >= 3
    assert all(0 <= n < TOTAL for n in record.acknowledged)

    await ctl.configure(throughput_bytes_per_second=None)
    result: ImportResult = await clients().models.import_file(source)
    assert result.resumed is True
    await ctl.assert_stored(result.model_id, source)
