"""The trailing SHA-256 hasher: equal to sha256sum, never ahead of the reads, generic sources."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kore_models.errors import FileChangedError
from kore_models.transfer.hashing import (
    FileByteSource,
    HashCancelled,
    ReadFrontier,
    TrailingHasher,
    sha256_of_file,
    sha256_of_source,
)

BLOCK = 64 * 1024


class MemorySource:
    """A non-file byte source (like a folder's virtual tar) that records every read."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.reads: list[tuple[int, int, str]] = []
        self.reached = threading.Event()
        self.target = -1

    @property
    def size(self) -> int:
        return len(self.data)

    def readinto(self, offset: int, view: memoryview) -> int:
        piece = self.data[offset : offset + len(view)]
        view[: len(piece)] = piece
        self.reads.append((offset, len(piece), threading.current_thread().name))
        if offset + len(piece) >= self.target:
            self.reached.set()
        return len(piece)


class AsyncMemorySource:
    """A byte source whose ``readinto`` is a coroutine function."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.loops: set[int] = set()

    @property
    def size(self) -> int:
        return len(self.data)

    async def readinto(self, offset: int, view: memoryview) -> int:
        self.loops.add(id(asyncio.get_running_loop()))
        await asyncio.sleep(0)
        piece = self.data[offset : offset + len(view)]
        view[: len(piece)] = piece
        return len(piece)


@pytest.mark.parametrize("size", [0, 1, BLOCK - 1, BLOCK, BLOCK + 1, 5 * BLOCK + 12345])
async def test_file_digest_equals_sha256sum(
    size: int, write_file: Callable[[int], Path], sha256sum: Callable[[Path], str]
) -> None:
    path = write_file(size)
    result = await sha256_of_file(path, block_size=BLOCK)
    assert result.sha256 == sha256sum(path)
    assert result.size == size
    assert result.cpu_seconds >= 0


async def test_out_of_order_reads_are_hashed_in_order_and_never_ahead(
    write_file: Callable[[int], Path], sha256sum: Callable[[Path], str]
) -> None:
    """Chunks reported in a shuffled order; the hasher reads only below the frontier."""
    size = 40 * BLOCK + 777
    path = write_file(size)
    chunk = 3 * BLOCK
    ranges = [(start, min(start + chunk, size)) for start in range(0, size, chunk)]
    random.Random(5).shuffle(ranges)
    source = MemorySource(path.read_bytes())
    hasher = TrailingHasher(source, block_size=BLOCK)
    hasher.start()
    frontier = ReadFrontier()
    for start, end in ranges:
        before = len(source.reads)
        old_prefix = frontier.prefix
        frontier.add(start, end)
        if old_prefix < frontier.prefix < size:
            source.reached.clear()
            source.target = frontier.prefix
            hasher.mark_read(start, end)
            await asyncio.to_thread(source.reached.wait)
            assert source.reads[-1][0] + source.reads[-1][1] == frontier.prefix
        else:
            hasher.mark_read(start, end)
        assert all(offset + length <= frontier.prefix for offset, length, _ in source.reads)
        assert len(source.reads) >= before
    result = await hasher.digest()
    assert result.sha256 == sha256sum(path)
    offsets = [offset for offset, _, _ in source.reads]
    assert offsets == sorted(offsets)
    assert {name for _, _, name in source.reads} == {"kore-sha256"}


async def test_nothing_is_read_before_the_transfer_reads_it() -> None:
    source = MemorySource(os.urandom(10 * BLOCK))
    hasher = TrailingHasher(source, block_size=BLOCK)
    hasher.start()
    source.target = 2 * BLOCK
    hasher.mark_read(BLOCK, 4 * BLOCK)  # a gap at the start: nothing may be read
    hasher.mark_read(0, 2 * BLOCK)  # now [0, 4 blocks) is readable
    await asyncio.to_thread(source.reached.wait)
    assert max(offset + length for offset, length, _ in source.reads) <= 4 * BLOCK
    result = await hasher.digest()
    assert result.sha256 == hashlib.sha256(source.data).hexdigest()


async def test_a_generic_and_an_async_source_hash_like_hashlib() -> None:
    data = os.urandom(7 * BLOCK + 3)
    plain = await sha256_of_source(MemorySource(data), block_size=BLOCK)
    asynchronous = AsyncMemorySource(data)
    awaited = await sha256_of_source(asynchronous, block_size=BLOCK)
    assert plain.sha256 == awaited.sha256 == hashlib.sha256(data).hexdigest()
    assert asynchronous.loops == {id(asyncio.get_running_loop())}


async def test_cancel_stops_the_thread_and_digest_says_so() -> None:
    hasher = TrailingHasher(MemorySource(os.urandom(4 * BLOCK)), block_size=BLOCK)
    hasher.start()
    hasher.mark_read(0, BLOCK)
    hasher.cancel()
    with pytest.raises(HashCancelled):
        await hasher.digest()
    assert hasher._thread is not None
    await asyncio.to_thread(hasher._thread.join)


async def test_a_file_that_shrinks_or_changes_is_reported(
    write_file: Callable[[int], Path],
) -> None:
    path = write_file(4 * BLOCK)
    stat = path.stat()
    with path.open("r+b") as handle:
        handle.truncate(2 * BLOCK)
    shrunk = TrailingHasher(FileByteSource(path, 4 * BLOCK), block_size=BLOCK)
    with pytest.raises(FileChangedError, match="changed while it was being hashed"):
        await shrunk.digest()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    touched = TrailingHasher.for_file(path, 2 * BLOCK, mtime_ns=stat.st_mtime_ns)
    with pytest.raises(FileChangedError):
        await touched.digest()


async def test_a_source_that_ends_early_is_reported() -> None:
    class Short(MemorySource):
        @property
        def size(self) -> int:
            return len(self.data) + 10

    with pytest.raises(FileChangedError, match="ended at byte"):
        await sha256_of_source(Short(b"x" * 100))


async def test_the_file_source_closes_its_descriptor(write_file: Callable[[int], Path]) -> None:
    path = write_file(3 * BLOCK)
    opened: list[int] = []

    class Recording(FileByteSource):
        def _open(self) -> int:
            opened.append(super()._open())
            return opened[-1]

    hasher = TrailingHasher(Recording(path, 3 * BLOCK), block_size=BLOCK, owns_source=True)
    await hasher.digest()
    assert len(opened) == 1
    try:
        still = os.readlink(f"/proc/self/fd/{opened[0]}")
    except FileNotFoundError:
        still = ""
    assert still != str(path)


@given(
    st.integers(min_value=1, max_value=300).flatmap(
        lambda size: st.tuples(
            st.just(size),
            st.lists(
                st.tuples(st.integers(0, size), st.integers(0, size)).map(sorted), max_size=40
            ),
        )
    )
)
def test_the_frontier_is_the_covered_prefix(case: tuple[int, list[list[int]]]) -> None:
    size, ranges = case
    covered = [False] * size
    frontier = ReadFrontier()
    for start, end in ranges:
        frontier.add(start, end)
        for index in range(start, end):
            covered[index] = True
        expected = next((i for i, done in enumerate(covered) if not done), size)
        assert frontier.prefix == expected


async def test_a_cancelled_waiter_does_not_break_the_hashing_thread() -> None:
    """Cancelling the task that awaits the digest must not leave the thread failing to
    report (asyncio.wrap_future cancels a result that is not marked running)."""
    source = MemorySource(os.urandom(4 * BLOCK))
    hasher = TrailingHasher(source, block_size=BLOCK)
    hasher.start()
    waiting = asyncio.ensure_future(hasher.digest())
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert hasher._thread is not None
    await asyncio.to_thread(hasher._thread.join)
    assert not hasher._result.cancelled()
    with pytest.raises(HashCancelled):
        hasher._result.result()
