"""Streaming multipart parser for chunk uploads, chunk assembly and archive checks."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import lzma
import os
import re
import tarfile
import zipfile
import zlib
from collections.abc import AsyncIterator
from email.message import Message
from functools import partial
from pathlib import Path
from typing import BinaryIO, cast

from aiohttp import StreamReader

from .errors import ApiError
from .guards import BodyStalled, BodyWatch, body_timeout_error
from .shaping import READ_SIZE, Pacer
from .state import EmulatorState

MAX_HEADER_BYTES = 16 * 1024
_BOUNDARY_RE = re.compile(r'boundary=(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)


def boundary_from(content_type: str) -> bytes | None:
    """The multipart boundary from any Content-Type (curl sends application/json; boundary=…)."""
    m = _BOUNDARY_RE.search(content_type or "")
    if not m:
        return None
    return (m.group(1) or m.group(2)).encode("latin-1")


def part_name(headers: bytes) -> str:
    """The `name` of a part from its Content-Disposition (form-data or attachment)."""
    msg = Message()
    for line in headers.decode("utf-8", "replace").split("\r\n"):
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == "content-disposition":
            msg["content-disposition"] = value.strip()
    name = msg.get_param("name", header="content-disposition")
    return name if isinstance(name, str) else ""


class MultipartStream:
    """Reads multipart parts from a raw body stream without buffering whole parts."""

    def __init__(
        self, content: StreamReader, boundary: bytes | None, pacer: Pacer, state: EmulatorState
    ) -> None:
        self._content = content
        self._state = state
        self._watch = BodyWatch(state, content)
        self._boundary = boundary
        self._pacer = pacer
        self._buf = b""
        self._done = False
        self._in_body = False
        self._started = False

    def close(self) -> None:
        """Stop watching the body for stalls (call once the body is read or abandoned)."""
        self._watch.close()

    async def _read(self) -> bytes:
        """The next piece of the body as the socket delivered it (no join, no copy)."""
        try:
            if self._pacer.shaped:
                data = await self._content.read(self._pacer.block)
            else:
                data, _ = await self._content.readchunk()
        except BodyStalled:
            raise body_timeout_error(self._state) from None
        watch = self._watch
        watch.reads += 1
        if data and self._pacer.shaped:
            watch.pacing = True
            try:
                await self._pacer.account(len(data))
            finally:
                watch.pacing = False
        return data

    async def _fill(self) -> bool:
        data = await self._read()
        if not data:
            return False
        self._buf = self._buf + data if self._buf else data
        return True

    async def _need(self, n: int) -> None:
        while len(self._buf) < n:
            if not await self._fill():
                raise ApiError(400, "BAD_MULTIPART", "multipart body ended unexpectedly")

    async def _start(self) -> None:
        await self._need(2)
        if self._boundary is None:
            # No boundary parameter at all: take it from the body's first line.
            while b"\r\n" not in self._buf and len(self._buf) < 256:
                await self._need(len(self._buf) + 1)
            first = self._buf.split(b"\r\n", 1)[0]
            if not first.startswith(b"--") or len(first) < 3:
                raise ApiError(400, "BAD_MULTIPART", "body is not multipart/form-data")
            self._boundary = first[2:].rstrip()
        delim = b"--" + self._boundary
        while True:
            idx = self._buf.find(delim)
            if idx >= 0:
                self._buf = self._buf[idx + len(delim) :]
                return
            if len(self._buf) > 64 * 1024:
                raise ApiError(400, "BAD_MULTIPART", "multipart boundary not found")
            if not await self._fill():
                raise ApiError(400, "BAD_MULTIPART", "multipart boundary not found")

    async def _after_delimiter(self) -> bool:
        """Consume what follows a delimiter; True if another part follows."""
        await self._need(2)
        if self._buf.startswith(b"--"):
            self._done = True
            return False
        while self._buf[:1] in (b" ", b"\t"):
            self._buf = self._buf[1:]
            await self._need(2)
        if not self._buf.startswith(b"\r\n"):
            raise ApiError(400, "BAD_MULTIPART", "malformed multipart delimiter")
        self._buf = self._buf[2:]
        return True

    async def next_part(self) -> str | None:
        """Advance to the next part; return its name ("" if unnamed), or None at the end."""
        if self._done:
            return None
        if not self._started:
            self._started = True
            await self._start()
            if not await self._after_delimiter():
                return None
        elif self._in_body:
            async for _ in self.iter_body():
                pass
            if self._done:
                return None
        while True:
            if self._buf.startswith(b"\r\n"):
                headers, self._buf = b"", self._buf[2:]
                break
            idx = self._buf.find(b"\r\n\r\n")
            if idx >= 0:
                headers, self._buf = self._buf[:idx], self._buf[idx + 4 :]
                break
            if len(self._buf) > MAX_HEADER_BYTES:
                raise ApiError(400, "BAD_MULTIPART", "multipart part headers too large")
            await self._need(len(self._buf) + 1)
        self._in_body = True
        return part_name(headers)

    async def iter_body(self) -> AsyncIterator[memoryview]:
        """Yield the current part's bytes in blocks until its closing delimiter."""
        assert self._boundary is not None
        marker = b"\r\n--" + self._boundary
        keep = len(marker) - 1
        while self._in_body:
            idx = self._buf.find(marker)
            if idx >= 0:
                if idx:
                    yield memoryview(self._buf)[:idx]
                self._buf = self._buf[idx + len(marker) :]
                self._in_body = False
                await self._after_delimiter()
                return
            if len(self._buf) > keep:
                yield memoryview(self._buf)[: len(self._buf) - keep]
                self._buf = self._buf[len(self._buf) - keep :]
            data = await self._read()
            if not data:
                raise ApiError(400, "BAD_MULTIPART", "multipart body ended inside a part")
            if not self._buf:
                self._buf = data
            elif len(data) < len(marker) or marker in self._buf + data[: len(marker) - 1]:
                # The delimiter may start in the kept tail and end in (or after) this piece:
                # join them and search again. Either the piece is short or this is rare.
                self._buf += data
            else:
                # The piece is long enough that a delimiter starting in the tail would have been
                # found in tail + its first len(marker) - 1 bytes: the tail is body bytes.
                yield memoryview(self._buf)
                self._buf = data


# ---- assembly and validation (run in worker threads) ----------------------------------


def assemble(parts: list[Path], dest: Path) -> tuple[int, str]:
    """Concatenate chunk files into dest atomically; return (size, sha256 hex)."""
    digest = hashlib.sha256()
    size = 0
    tmp = dest.with_name(dest.name + ".tmp")
    buf = bytearray(READ_SIZE)
    view = memoryview(buf)
    with open(tmp, "wb") as out:
        for path in parts:
            with open(path, "rb") as src:
                while n := src.readinto(buf):
                    digest.update(view[:n])
                    out.write(view[:n])
                    size += n
    os.replace(tmp, dest)
    return size, digest.hexdigest()


INVALID_ARCHIVE = "import validation failed: not a valid tar or zip archive"


def archive_problem(path: Path, extension: str) -> str | None:
    """None if the file is a readable archive of its extension's kind, else why not.

    tar (plain, or compressed with gzip, bzip2 or xz), tgz and gz (gzip tars) have every member
    header listed with tarfile and each member's
    data checked to be present; like tarfile (and unlike GNU tar), bytes after the last good
    member that are not a header end the listing quietly. A gzip stream is read to its end so
    its CRC is checked. zip files have every member's CRC checked. Other extensions (allowed by
    configuration) are not checked.
    """
    if extension == "zip":
        kind, check = "zip archive", _zip_members
    elif extension in ("tar", "tar.gz", "tgz", "gz"):
        kind = "tar archive" if extension == "tar" else "gzip tar archive"
        check = partial(_tar_members, gzip_only=extension != "tar")
    else:
        return None
    try:
        members = check(path)
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError, zlib.error, ValueError) as exc:
        return f"{INVALID_ARCHIVE} (not a readable {kind}: {exc})"
    if members == 0:
        return f"{INVALID_ARCHIVE} (the {kind} has no members)"
    return None


def _decompressed(fh: BinaryIO, magic: bytes) -> BinaryIO | None:
    """A reader of fh's content when fh starts like gzip, bzip2 or xz (the caller closes it)."""
    if magic.startswith(b"\x1f\x8b"):
        return cast(BinaryIO, gzip.GzipFile(fileobj=fh))
    if magic.startswith(b"BZh"):
        return cast(BinaryIO, bz2.BZ2File(fh))
    if magic.startswith(b"\xfd7zXZ\x00"):
        return cast(BinaryIO, lzma.LZMAFile(fh))
    return None


def _tar_members(path: Path, *, gzip_only: bool) -> int:
    """Count the members of a tar, read through gzip, bzip2 or xz when it starts like one."""
    with open(path, "rb") as fh:
        magic = fh.read(6)
        fh.seek(0)
        if gzip_only and not magic.startswith(b"\x1f\x8b"):
            raise tarfile.ReadError("not a gzip file")
        unpacked = _decompressed(fh, magic)
        stream = unpacked or fh
        try:
            with tarfile.open(fileobj=stream, mode="r:") as archive:
                members = sum(1 for _ in archive)
            if unpacked is not None:  # read to the end: the format checks its CRC there
                while unpacked.read(READ_SIZE):
                    pass
        finally:
            if unpacked is not None:
                unpacked.close()
        return members


def _zip_members(path: Path) -> int:
    with zipfile.ZipFile(path) as archive:
        bad = archive.testzip()
        if bad is not None:
            raise zipfile.BadZipFile(f"member {bad!r} is corrupt")
        return len(archive.infolist())
