"""Request bodies streamed from a slice of a file or a byte source, with a stall watchdog.

How it works: :class:`FileSlicePayload` is an aiohttp payload of known size that reads
``(offset, length)`` of a file with aiofiles in small blocks (or, when the slice names a
:class:`ByteSource` such as a folder's virtual tar, asks the source for each block) and
writes each block to the connection, so a chunk is never held whole in memory and the
event loop never blocks on disk. Each write must drain within the stall timeout, else the
attempt fails with a :class:`~kore_models.errors.StallError` (aiohttp has no write timeout
of its own). Before the first read the file's size and mtime are compared with what the
upload planned for.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import aiofiles.threadpool
from aiohttp import MultipartWriter
from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import Payload

from .errors import FileChangedError, StallError

__all__ = [
    "MIN_BLOCK",
    "ByteSource",
    "FileSlice",
    "FileSlicePayload",
    "RangeReader",
    "build_chunk_form",
]

MIN_BLOCK = 128 * 1024
"""Smallest read block: larger than aiohttp's 64 KiB write limit, so every write drains."""


class RangeReader(Protocol):
    """Reads ranges of one :class:`ByteSource`; one read at a time, in a worker thread."""

    def readinto(self, offset: int, view: memoryview) -> int:
        """Fill ``view`` from ``offset`` (blocking); return the count, 0 past the end."""
        ...

    def close(self) -> None:
        """Release what the reader holds; safe while a read is still running elsewhere."""
        ...


class ByteSource(Protocol):
    """Bytes of a known size that can be read from any offset (e.g. a folder's tar)."""

    size: int

    def open_reader(self) -> RangeReader:
        """A reader (cheap: nothing is opened before the first read)."""
        ...


@dataclass(frozen=True)
class FileSlice:
    """``length`` bytes of ``path`` from ``offset``; the file must still have ``file_size``.

    With ``source`` the bytes come from that source instead, and ``path`` only names it
    in messages; the source checks its own files for changes.
    """

    path: Path
    offset: int
    length: int
    file_size: int | None = None
    mtime_ns: int | None = None
    source: ByteSource | None = None

    def check_unchanged(self, stat: os.stat_result) -> None:
        """Raise FileChangedError when the file no longer matches the plan."""
        if self.file_size is not None and stat.st_size != self.file_size:
            raise FileChangedError(
                f"{self.path} changed size during the upload "
                f"({self.file_size} -> {stat.st_size} bytes); the import was stopped"
            )
        if self.mtime_ns is not None and stat.st_mtime_ns != self.mtime_ns:
            raise FileChangedError(
                f"{self.path} was modified during the upload; the import was stopped"
            )


class FileSlicePayload(Payload):
    """An aiohttp payload that streams one :class:`FileSlice` block by block."""

    def __init__(
        self,
        source: FileSlice,
        *,
        block_size: int,
        stall_timeout: float,
        on_bytes: Callable[[int], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(source, content_type="application/octet-stream", **kwargs)
        self._source = source
        self._size = source.length
        self._block_size = block_size
        self._stall_timeout = stall_timeout
        self._on_bytes = on_bytes
        self.error: BaseException | None = None
        self.bytes_sent = 0

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """Not meaningful for binary slices; present because aiohttp requires it."""
        return f"<{self._source.length} bytes of {self._source.path.name}>"

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        """The slice's bytes, read from disk (``MultipartWriter.as_bytes`` calls this).

        aiohttp's default would encode :meth:`decode`, a placeholder, not the content.
        """
        src = self._source
        if src.source is not None:
            buffer = bytearray(src.length)
            reader = src.source.open_reader()
            try:
                count = await asyncio.to_thread(reader.readinto, src.offset, memoryview(buffer))
            finally:
                reader.close()
            return bytes(buffer[:count])
        raw = await open_for_reading(src.path)
        try:
            src.check_unchanged(os.fstat(raw.fileno()))
            data = await asyncio.to_thread(os.pread, raw.fileno(), src.length, src.offset)
        finally:
            raw.close()
        if len(data) != src.length:
            raise FileChangedError(
                f"{src.path} is shorter than planned (ended at byte {src.offset + len(data)}); "
                "the import was stopped"
            )
        return data

    async def write(self, writer: AbstractStreamWriter) -> None:
        """Stream the slice to ``writer``; record any failure in ``self.error``."""
        try:
            await self._stream(writer)
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                self.error = exc
            raise

    async def _stream(self, writer: AbstractStreamWriter) -> None:
        src = self._source
        size = max(MIN_BLOCK, min(self._block_size, src.length))
        # Two buffers, filled in turn with readinto: no allocation per block (allocating
        # 1 MiB objects in the reader thread and freeing them on the loop cost ~150k page
        # faults per GiB), and a buffer is refilled only after the other one was written
        # and drained, when the transport no longer refers to it.
        buffers = (bytearray(size), bytearray(size))
        if src.source is not None:
            await self._stream_source(src.source, writer, buffers)
            return
        turn = 0
        raw = await open_for_reading(src.path)
        try:
            handle = aiofiles.threadpool.wrap(raw)
            src.check_unchanged(os.fstat(raw.fileno()))
            await handle.seek(src.offset)
            remaining = src.length
            while remaining:
                view = memoryview(buffers[turn])[: min(size, remaining)]
                count = await handle.readinto(view)
                if not count:
                    raise FileChangedError(
                        f"{src.path} is shorter than planned (ended at byte "
                        f"{src.offset + src.length - remaining}); the import was stopped"
                    )
                await self._send_block(writer, view[:count])
                turn ^= 1
                remaining -= count
        finally:
            # Closed here and now, on every path (a cancelled upload, an early 413): closing
            # a file opened for reading does not block, and a close left to a background
            # task could outlive the loop and leak the handle.
            raw.close()

    async def _stream_source(
        self, source: ByteSource, writer: AbstractStreamWriter, buffers: tuple[bytearray, ...]
    ) -> None:
        """Stream from a :class:`ByteSource`, block by block, into the same two buffers.

        One reader serves the whole chunk, so a file spanning many blocks is opened once;
        each read runs in the loop's default executor, as aiofiles' reads do.
        """
        src = self._source
        loop = asyncio.get_running_loop()
        reader = source.open_reader()
        done, turn = 0, 0
        try:
            while done < src.length:
                view = memoryview(buffers[turn])[: min(len(buffers[turn]), src.length - done)]
                count = await loop.run_in_executor(None, reader.readinto, src.offset + done, view)
                if not count:
                    raise FileChangedError(
                        f"{src.path} ended before byte {src.offset + done}; the import was stopped"
                    )
                await self._send_block(writer, view[:count])
                turn ^= 1
                done += count
        finally:
            reader.close()  # deferred to the reading thread if a read is still running

    async def _send_block(self, writer: AbstractStreamWriter, block: memoryview) -> None:
        try:
            async with asyncio.timeout(self._stall_timeout):
                await writer.write(block)
        except TimeoutError:
            raise StallError(f"no bytes moved for {self._stall_timeout:g}s while sending") from None
        self.bytes_sent += len(block)
        if self._on_bytes is not None:
            self._on_bytes(len(block))


async def open_for_reading(path: Path) -> BinaryIO:
    """Open ``path`` unbuffered in a worker thread; a cancelled caller never leaks the file.

    When the caller is cancelled while the thread is still opening, the file is closed
    by a done-callback the moment the thread hands it over.
    """
    opening = asyncio.ensure_future(asyncio.to_thread(_open_unbuffered, path))
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(_close_if_opened)
        raise


def _open_unbuffered(path: Path) -> BinaryIO:
    return open(path, "rb", buffering=0)  # closed by the caller


def _close_if_opened(opening: asyncio.Future[BinaryIO]) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()


def build_chunk_form(chunk_number: int, file_part: Payload, *, filename: str) -> MultipartWriter:
    """The documented multipart body: parts ``file`` and ``chunkNumber`` (a decimal string)."""
    form = MultipartWriter("form-data")
    form.append_payload(file_part).set_content_disposition(
        "form-data", name="file", filename=filename
    )
    form.append(str(chunk_number)).set_content_disposition("form-data", name="chunkNumber")
    return form
