"""SHA-256 of the bytes a transfer sends, computed in a worker thread that trails the reads.

How it works: an upload reads its chunks concurrently and out of order, so the bytes it
sends never pass by in file order. :class:`TrailingHasher` owns one dedicated thread that
hashes the source strictly in order, but only up to the *read frontier*: the longest
prefix of the source that the upload has already read (the upload reports each block it
read with :meth:`TrailingHasher.mark_read`). The hasher therefore re-reads bytes that
were read a moment ago and are still in the page cache, instead of making a second pass
over the disk; with 8 chunks of 16 MiB in flight it trails by about 128 MiB. When the
upload is done (or skipped chunks a resumed run already sent), :meth:`TrailingHasher.digest`
releases the rest and returns the digest. ``hashlib`` and ``os.preadv`` release the GIL,
so the event loop never waits for hashing.

The hasher is generic over a *byte source*: anything with a ``size`` and a
``readinto(offset, view)`` that fills ``view`` from ``offset`` and returns the count (a
plain file, or the virtual tar of a folder). ``readinto`` may be blocking (called in the
hasher's thread) or a coroutine function (run on the event loop the hasher started on).
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import contextlib
import hashlib
import inspect
import os
import sys
import threading
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..errors import FileChangedError

if TYPE_CHECKING:
    from .source import UploadSource

__all__ = [
    "ByteSource",
    "FileByteSource",
    "HashCancelled",
    "HashResult",
    "NoHashing",
    "ReadFrontier",
    "SizedReader",
    "TrailingHasher",
    "hasher_for",
    "sha256_of_file",
    "sha256_of_source",
    "upload_hasher",
]

HASH_BLOCK = 1024 * 1024
"""Bytes hashed per read: large enough that the per-call overhead is negligible."""

UPLOAD_HASHER_NICENESS = 10
"""How much lower than the event loop an import's hashing thread runs (Linux, where each
thread has its own nice value): when the cores are short, the loop that feeds the sockets
goes first and the hasher, which only trails it, catches up when the upload is done."""


def lower_this_threads_priority(step: int) -> None:
    """Raise the calling thread's nice value by ``step`` (Linux only; best effort)."""
    if step <= 0 or not sys.platform.startswith("linux"):
        return
    tid = threading.get_native_id()
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + step)


@runtime_checkable
class ByteSource(Protocol):
    """Bytes with a known size that can be read at any offset."""

    @property
    def size(self) -> int:
        """Total number of bytes."""
        ...

    def readinto(self, offset: int, view: memoryview) -> int | Awaitable[int]:
        """Fill ``view`` with the bytes from ``offset``; return how many were written."""
        ...


class FileByteSource:
    """A regular file read with ``pread``, checked against the size (and mtime) planned.

    Opened lazily by the first read (in the reading thread); :meth:`close` releases it.
    """

    def __init__(self, path: Path, size: int, *, mtime_ns: int | None = None) -> None:
        self.path = path
        self._size = size
        self._mtime_ns = mtime_ns
        self._fd: int | None = None
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        """The size the file was planned with."""
        return self._size

    def _open(self) -> int:
        fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        stat = os.fstat(fd)
        if stat.st_size != self._size or (
            self._mtime_ns is not None and stat.st_mtime_ns != self._mtime_ns
        ):
            os.close(fd)
            raise FileChangedError(f"{self.path} changed while it was being hashed")
        return fd

    def readinto(self, offset: int, view: memoryview) -> int:
        """Blocking positional read into ``view``."""
        with self._lock:
            if self._fd is None:
                self._fd = self._open()
            fd = self._fd
        return os.preadv(fd, [view], offset)

    def close(self) -> None:
        """Close the file descriptor, if one was opened."""
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class BlockingReader(Protocol):
    """A reader of byte ranges that must be closed (a folder's ``TarReader``)."""

    def readinto(self, offset: int, view: memoryview) -> int:
        """Fill ``view`` from ``offset``; return the count (blocking)."""
        ...

    def close(self) -> None:
        """Release what the reader holds open."""
        ...


class SizedReader:
    """A :class:`BlockingReader` with the size of what it reads: a :class:`ByteSource`."""

    def __init__(self, reader: BlockingReader, size: int) -> None:
        self._reader = reader
        self._size = size

    @property
    def size(self) -> int:
        """Total number of bytes."""
        return self._size

    def readinto(self, offset: int, view: memoryview) -> int:
        """Blocking read through the wrapped reader."""
        return self._reader.readinto(offset, view)

    def close(self) -> None:
        """Close the wrapped reader."""
        self._reader.close()


class ReadFrontier:
    """The longest prefix ``[0, prefix)`` covered by the ranges added so far.

    Ranges beyond the prefix are kept as sorted, disjoint islands; an upload has about
    one island per chunk in flight, so adding a range is cheap.
    """

    def __init__(self) -> None:
        self.prefix = 0
        self._islands: list[tuple[int, int]] = []

    def add(self, start: int, end: int) -> None:
        """Record that ``[start, end)`` has been read."""
        start = max(start, self.prefix)
        if end <= start:
            return
        index = bisect.bisect_left(self._islands, (start, end))
        self._islands.insert(index, (start, end))
        merged: list[tuple[int, int]] = []
        for island_start, island_end in self._islands:
            if merged and island_start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], island_end))
            else:
                merged.append((island_start, island_end))
        while merged and merged[0][0] <= self.prefix:
            self.prefix = max(self.prefix, merged.pop(0)[1])
        self._islands = merged

    @property
    def islands(self) -> int:
        """How many separate ranges wait beyond the prefix."""
        return len(self._islands)


@dataclass(frozen=True)
class HashResult:
    """A finished digest and what it cost."""

    sha256: str
    size: int
    cpu_seconds: float
    """CPU time of the hashing thread (reads and SHA-256)."""
    seconds: float
    """Wall time from the start of the hasher to the last byte hashed."""


class HashCancelled(Exception):
    """The hasher was stopped before it reached the end of its source (internal: the
    transfer that wanted the digest has already ended another way)."""


class TrailingHasher:
    """Hashes a :class:`ByteSource` in order, never ahead of what the transfer has read.

    Call :meth:`start` on the event loop, :meth:`mark_read` for every range the transfer
    read (from any thread), then ``await`` :meth:`digest`. :meth:`cancel` stops it early.
    As a context manager (``with TrailingHasher(...) as hasher:``) it starts on entry and
    is cancelled on exit, which does nothing once the digest is done.
    """

    def __init__(
        self,
        source: ByteSource,
        *,
        block_size: int = HASH_BLOCK,
        owns_source: bool = False,
    ) -> None:
        if block_size < 1:
            raise ValueError("block_size must be positive")
        self.source = source
        self.size = int(source.size)
        self._block_size = block_size
        self._owns_source = owns_source
        self._frontier = ReadFrontier()
        self._released = False
        self._cancelled = False
        self._condition = threading.Condition()
        self._result: concurrent.futures.Future[HashResult] = concurrent.futures.Future()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._async_source = inspect.iscoroutinefunction(source.readinto)
        self.hashed = 0
        self.niceness = 0
        """Set before :meth:`start`: how much lower the thread runs than the loop."""

    @classmethod
    def for_file(
        cls, path: Path, size: int, *, mtime_ns: int | None = None, block_size: int = HASH_BLOCK
    ) -> TrailingHasher:
        """A hasher over a regular file, which it opens and closes itself."""
        source = FileByteSource(path, size, mtime_ns=mtime_ns)
        return cls(source, block_size=block_size, owns_source=True)

    def start(self) -> None:
        """Start the hashing thread (call it once, from the event loop)."""
        if self._thread is not None:
            raise RuntimeError("the hasher was already started")
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._thread = threading.Thread(target=self._run, name="kore-sha256", daemon=True)
        self._thread.start()

    def __enter__(self) -> TrailingHasher:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cancel()

    def mark_read(self, start: int, end: int) -> None:
        """The transfer has read ``[start, end)``: the hasher may read it from the cache."""
        with self._condition:
            before = self._frontier.prefix
            self._frontier.add(start, end)
            if self._frontier.prefix != before:
                self._condition.notify()

    def release(self) -> None:
        """Let the hasher read to the end without waiting for the transfer."""
        with self._condition:
            self._released = True
            self._condition.notify()

    def cancel(self) -> None:
        """Stop hashing; :meth:`digest` then raises :class:`HashCancelled`."""
        with self._condition:
            self._cancelled = True
            self._condition.notify()

    async def digest(self) -> HashResult:
        """Release the rest of the source and wait for the digest (in the thread)."""
        if self._thread is None:
            self.start()
        self.release()
        try:
            return await asyncio.wrap_future(self._result)
        except asyncio.CancelledError:
            self.cancel()
            raise

    def _wait_for_bytes(self, position: int) -> int:
        """Block until bytes beyond ``position`` may be read; return the readable end."""
        with self._condition:
            while True:
                if self._cancelled:
                    raise HashCancelled("hashing was stopped before the end of the data")
                if self._released:
                    return self.size
                if self._frontier.prefix > position:
                    return min(self._frontier.prefix, self.size)
                self._condition.wait()

    def _read(self, offset: int, view: memoryview) -> int:
        if not self._async_source:
            count = self.source.readinto(offset, view)
            assert isinstance(count, int)
            return count
        if self._loop is None:
            raise RuntimeError("an async byte source needs the hasher started on a loop")
        pending = self.source.readinto(offset, view)
        assert inspect.isawaitable(pending)

        async def await_read() -> int:
            return await pending

        return asyncio.run_coroutine_threadsafe(await_read(), self._loop).result()

    def _run(self) -> None:
        # Running: a cancelled waiter (asyncio.wrap_future) can no longer cancel the result.
        if not self._result.set_running_or_notify_cancel():
            return
        outcome: HashResult | BaseException
        lower_this_threads_priority(self.niceness)
        try:
            outcome = self._hash_all()
        except BaseException as exc:
            outcome = exc
        if self._owns_source:  # closed before anyone learns the outcome
            close = getattr(self.source, "close", None)
            if callable(close):
                close()
        if isinstance(outcome, BaseException):
            self._result.set_exception(outcome)
        else:
            self._result.set_result(outcome)

    def _hash_all(self) -> HashResult:
        cpu_start = time.thread_time()
        wall_start = time.monotonic()
        digest = hashlib.sha256()
        buffer = memoryview(bytearray(self._block_size))
        position = 0
        while position < self.size:
            end = self._wait_for_bytes(position)
            while position < end:
                if self._cancelled:
                    raise HashCancelled("hashing was stopped before the end of the data")
                want = min(self._block_size, end - position)
                count = self._read(position, buffer[:want])
                if count <= 0:
                    raise FileChangedError(
                        f"the data ended at byte {position} of {self.size} while it "
                        "was being hashed (the file changed?)"
                    )
                digest.update(buffer[:count])
                position += count
                self.hashed = position
        return HashResult(
            sha256=digest.hexdigest(),
            size=self.size,
            cpu_seconds=time.thread_time() - cpu_start,
            seconds=time.monotonic() - wall_start,
        )


class NoHashing:
    """Stands in for :class:`TrailingHasher` when hashing is off (``checksum=False``):
    it reads nothing and its digest is None."""

    def __enter__(self) -> NoHashing:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def mark_read(self, start: int, end: int) -> None:
        """Nothing to follow."""

    async def digest(self) -> None:
        """No digest: nothing was hashed."""
        return None


def upload_hasher(source: UploadSource, *, checksum: bool) -> TrailingHasher | NoHashing:
    """What hashes an import of ``source``: a trailing hasher, or nothing when switched off."""
    if not checksum:
        return NoHashing()
    hasher = hasher_for(source)
    hasher.niceness = UPLOAD_HASHER_NICENESS
    return hasher


def hasher_for(source: UploadSource) -> TrailingHasher:
    """A trailing hasher over exactly what an import sends: the file, or the folder's tar."""
    if source.archive is None:
        return TrailingHasher.for_file(source.path, source.size)
    reader = SizedReader(source.archive.open_reader(), source.archive.size)
    return TrailingHasher(reader, owns_source=True)


async def sha256_of_source(source: ByteSource, *, block_size: int = HASH_BLOCK) -> HashResult:
    """Hash all of ``source`` in a worker thread (no transfer to trail)."""
    hasher = TrailingHasher(source, block_size=block_size)
    hasher.start()
    try:
        return await hasher.digest()
    finally:
        hasher.cancel()


async def sha256_of_file(path: Path, *, block_size: int = HASH_BLOCK) -> HashResult:
    """Hash a regular file in a worker thread."""
    stat = await asyncio.to_thread(os.stat, path)
    hasher = TrailingHasher.for_file(path, stat.st_size, block_size=block_size)
    hasher.start()
    try:
        return await hasher.digest()
    finally:
        hasher.cancel()
