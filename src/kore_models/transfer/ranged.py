"""Ranged downloads: concurrent Range requests into one pre-sized part file, resumable per piece.

How it works: the file is cut into pieces of ``piece_size`` bytes. ``ranges`` workers take
the lowest unfinished piece, ask for it with ``Range`` and ``If-Range`` through
:meth:`Fetcher.open <kore_models.transfer.fetch.Fetcher.open>`, and write it at its offset
with ``pwrite``. The sidecar records finished pieces and how far each piece in flight got
(written after the data is flushed), so after a crash each piece resumes where it
stopped, a little before it in fact: the overlap is fetched again and compared. A 200
(the server ignored Range, or the file changed and ``If-Range`` failed), another total
size or other validators raise :class:`~kore_models.transfer.fetch.StartOver`. One failed
piece cancels the others; their progress is kept and the retry rulebook decides.

SHA-256: pieces are handed out in file order, so the finished prefix of the file grows
steadily; a follower hashes that prefix in a worker thread as it grows (reading back from
the page cache), and only the last pieces are hashed after the transfer ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib

import aiohttp

from ..errors import KoreConnectionError
from .fetch import OVERLAP, Answer, Fetcher, StartOver, if_range_value, pump
from .partfile import PartFile, PartRecord, in_thread

__all__ = ["RangedDownload"]


class RangedDownload:
    """One attempt at the unfinished pieces of ``record`` (which it keeps up to date)."""

    def __init__(self, part: PartFile, fetcher: Fetcher, record: PartRecord, ranges: int) -> None:
        assert record.total is not None
        assert record.piece_size
        self.part = part
        self.fetcher = fetcher
        self.record = record
        self.total = record.total
        self.piece = record.piece_size
        self.count = -(-self.total // self.piece)
        self.ranges = max(1, ranges)
        self.done = set(record.done)
        self.progress = {int(k): v for k, v in record.progress.items()}
        self.frontier = 0
        self.advanced = asyncio.Event()
        self._saving: asyncio.Task[None] | None = None
        self._save_again = False
        self._durable = False
        self.unsaved = 0
        self.hash_seconds_after_transfer = 0.0

    def held(self) -> int:
        """Bytes of the file already in the part."""
        return sum(self._span(i)[1] - self._span(i)[0] for i in self.done) + sum(
            self.progress.values()
        )

    def _span(self, index: int) -> tuple[int, int]:
        start = index * self.piece
        return start, min(self.total, start + self.piece)

    async def run(self, opened: tuple[Answer, aiohttp.ClientResponse] | None = None) -> str:
        """Fetch every unfinished piece; returns the file's SHA-256.

        ``opened`` is the probe's answer to ``bytes=0-<piece-1>``: it becomes piece 0.
        """
        queue = [i for i in range(self.count) if i not in self.done]
        self._advance()
        follower = asyncio.create_task(self._follow())
        if opened is not None:
            assert queue[:1] == [0], "the probe's answer is piece 0 of a fresh download"
            queue.pop(0)
        workers = [
            asyncio.create_task(self._work(queue, opened if k == 0 else None))
            for k in range(min(self.ranges, len(queue) + (opened is not None)))
        ]
        loop = asyncio.get_running_loop()
        try:
            await _all_or_first_error(workers)
            finished_at = loop.time()
            digest = await follower
            self.hash_seconds_after_transfer = loop.time() - finished_at
            if self._saving is not None:
                await self._saving  # a failed save (disk full) fails the download here
        except BaseException:
            follower.cancel()
            await asyncio.wait({follower})
            await self._save_final()
            raise
        return digest

    async def _work(
        self, queue: list[int], opened: tuple[Answer, aiohttp.ClientResponse] | None
    ) -> None:
        if opened is not None:
            await self._consume(0, *opened, at=0)
        while queue:
            await self._fetch(queue.pop(0))

    async def _fetch(self, index: int) -> None:
        """THE request of one piece (through the fetcher), resuming from its progress."""
        start, end = self._span(index)
        at = start + self.progress.get(index, 0)
        first = max(start, at - OVERLAP)
        validator = if_range_value(self.record.etag, self.record.last_modified)
        async with self.fetcher.open(first, end - 1, if_range=validator) as (answer, resp):
            if answer is None:
                raise StartOver(f"the server cannot serve bytes {first}-{end - 1} any more")
            if answer.status != 206:
                raise StartOver("the server sent the whole file where a range was asked")
            if not answer.decoder.identity:
                raise StartOver("the server encodes ranges; one plain stream instead", plain=True)
            if answer.total != self.total or not answer.same_file_as(
                self.record.etag, self.record.last_modified
            ):
                raise StartOver("the file on the server changed")
            expected = await in_thread(self.part.read_now, first, at - first)
            await self._consume(index, answer, resp, at=at, expected=expected)

    async def _consume(
        self,
        index: int,
        answer: Answer,
        resp: aiohttp.ClientResponse,
        *,
        at: int,
        expected: bytes = b"",
    ) -> None:
        start, end = self._span(index)

        def written(upto: int) -> None:
            self.unsaved += upto - start - self.progress.get(index, 0)
            self.progress[index] = upto - start
            self._advance()
            if self.unsaved >= self.piece // 4:
                self._save_soon(durable=False)

        blocks = self.fetcher.new_bytes(resp, answer, expected)
        reached = await pump(blocks, self._write, at, limit=end - at, on_written=written)
        if reached < end:
            raise KoreConnectionError(
                f"the range {start}-{end - 1} ended after {reached - start} bytes"
            )
        self.done.add(index)
        self.progress.pop(index, None)
        self._advance()
        self._save_soon()

    def _write(self, block: bytes, offset: int) -> None:
        self.part.write_now(block, offset)

    # ---- the finished prefix and its hash -------------------------------------------
    def _advance(self) -> None:
        index = 0
        while index in self.done:
            index += 1
        frontier = min(self.total, index * self.piece + self.progress.get(index, 0))
        if frontier > self.frontier:
            self.frontier = frontier
            self.advanced.set()

    async def _follow(self) -> str:
        hasher = hashlib.sha256()
        hashed = 0
        while hashed < self.total:
            await self.advanced.wait()
            self.advanced.clear()
            target = self.frontier
            if target > hashed:
                await in_thread(self.part.hash_now, hasher, hashed, target)
                hashed = target
        return hasher.hexdigest()

    # ---- the sidecar ------------------------------------------------------------------
    def _snapshot(self) -> PartRecord:
        self.record.done = sorted(self.done)
        self.record.progress = {str(k): v for k, v in self.progress.items() if v}
        return self.record.model_copy(deep=True)

    def _save_soon(self, *, durable: bool = True) -> None:
        """Save the sidecar in the background, one save at a time (requests coalesce).

        A finished piece is saved durably (the data flushed first); progress inside
        pieces is saved without flushing, every quarter piece: enough after a crash of
        the process, and the overlap check catches bytes a power loss took away.
        """
        self._durable = self._durable or durable
        if self._saving is not None and not self._saving.done():
            self._save_again = True
            return
        self._saving = asyncio.create_task(self._save_loop())

    async def _save_loop(self) -> None:
        while True:
            self._save_again, durable, self._durable = False, self._durable, False
            self.unsaved = 0
            await in_thread(
                functools.partial(self.part.save_now, sync_data=durable), self._snapshot()
            )
            if not self._save_again:
                return

    async def _save_final(self) -> None:
        if self._saving is not None:
            await asyncio.wait({self._saving})  # never two writers of the sidecar at once
            if not self._saving.cancelled():
                self._saving.exception()
        with contextlib.suppress(Exception):
            await in_thread(functools.partial(self.part.save_now, sync_data=True), self._snapshot())


async def _all_or_first_error(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for every task; on the first failure cancel the rest and raise that failure."""
    if not tasks:
        return
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
        raise
    failed = next((t for t in done if not t.cancelled() and t.exception() is not None), None)
    if failed is None:
        return
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    for task in tasks:  # mark every error as retrieved; the first one is raised
        if task is not failed and task.done() and not task.cancelled():
            task.exception()
    error = failed.exception()
    assert error is not None
    raise error
