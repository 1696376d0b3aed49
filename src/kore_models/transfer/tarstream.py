"""A virtual POSIX tar of a folder listing: known size up front, any byte range on demand.

How it works: the archive's bytes are a pure function of the listing. Each member is a
ustar header (uid/gid 0, empty user and group names, the listing's mode and whole-second
mtime), preceded by a pax extended header when its path is not ASCII or longer than 100
bytes, its size is 8 GiB or more, or its mtime does not fit ustar. Then the file's bytes,
zero padding to a 512-byte block, and two zero blocks end the archive. Headers are built on
demand (only their lengths are computed up front, so planning 10,000 members stays cheap);
file bytes are never held: :class:`TarReader` maps an offset to a header, a file range or
padding and reads files with ``os.pread``, one open file at a time. Each file is checked
when it is opened (size, mtime, device and inode as listed) and a short read is caught, so
a file that changed raises :class:`FileChangedError` instead of producing a corrupt
archive.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import threading
from dataclasses import dataclass
from types import TracebackType

from ..errors import FileChangedError
from .folder import FolderEntry, FolderListing, display_path

__all__ = ["BLOCK", "TarArchive", "TarReader", "build_member_header", "header_length"]

BLOCK = 512
_END_OF_ARCHIVE = 2 * BLOCK
_MAX_OCTAL_11 = 8**11
_PAX_NAME = b"././@PaxHeader"
_ZEROS = bytes(_END_OF_ARCHIVE)


def _octal(value: int, width: int) -> bytes:
    """``width`` bytes: zero-padded octal digits and a NUL."""
    return b"%0*o\0" % (width - 1, value)


def _ustar_block(name: bytes, *, mode: int, size: int, mtime: int, typeflag: bytes) -> bytes:
    header = bytearray(BLOCK)
    header[0:100] = name[:100].ljust(100, b"\0")
    header[100:108] = _octal(mode, 8)
    header[108:116] = _octal(0, 8)
    header[116:124] = _octal(0, 8)
    header[124:136] = _octal(size, 12)
    header[136:148] = _octal(mtime, 12)
    header[148:156] = b" " * 8
    header[156:157] = typeflag
    header[257:265] = b"ustar\x0000"
    header[329:337] = _octal(0, 8)
    header[337:345] = _octal(0, 8)
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header)


def _pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n".encode()
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length = len(str(length)) + len(body)
    return str(length).encode() + body


def _padding(size: int) -> int:
    return -size % BLOCK


def _member_name(entry: FolderEntry) -> str:
    return entry.path + ("/" if entry.is_dir else "")


def _needs_pax(entry: FolderEntry) -> bool:
    name = _member_name(entry)
    mtime = entry.mtime_ns // 1_000_000_000
    return (
        len(name) > 100
        or not name.isascii()
        or not 0 <= mtime < _MAX_OCTAL_11
        or entry.size >= _MAX_OCTAL_11
    )


def header_length(entry: FolderEntry) -> int:
    """How many bytes :func:`build_member_header` returns, mostly without building it."""
    return len(build_member_header(entry)) if _needs_pax(entry) else BLOCK


def build_member_header(entry: FolderEntry) -> bytes:
    """The header block(s) of one member: a pax header when needed, then ustar."""
    name = _member_name(entry)
    raw_name = name.encode("utf-8")
    mtime = entry.mtime_ns // 1_000_000_000
    size = 0 if entry.is_dir else entry.size
    records: list[bytes] = []
    if 0 <= mtime < _MAX_OCTAL_11:
        ustar_mtime = mtime
    else:
        records.append(_pax_record("mtime", str(mtime)))
        ustar_mtime = 0
    if len(raw_name) > 100 or not name.isascii():
        records.append(_pax_record("path", name))
        raw_name = name.encode("ascii", "replace")[-100:]
    if size < _MAX_OCTAL_11:
        ustar_size = size
    else:
        records.append(_pax_record("size", str(size)))
        ustar_size = 0
    typeflag = b"5" if entry.is_dir else b"0"
    header = _ustar_block(
        raw_name, mode=entry.mode, size=ustar_size, mtime=ustar_mtime, typeflag=typeflag
    )
    if not records:
        return header
    pax_data = b"".join(records)
    pax_header = _ustar_block(_PAX_NAME, mode=0o644, size=len(pax_data), mtime=0, typeflag=b"x")
    return pax_header + pax_data + bytes(_padding(len(pax_data))) + header


@dataclass(frozen=True, slots=True)
class _Member:
    """Where one member lies in the archive."""

    start: int
    header_length: int
    entry: FolderEntry

    @property
    def data_start(self) -> int:
        return self.start + self.header_length

    @property
    def data_end(self) -> int:
        return self.data_start + self.entry.size


class TarArchive:
    """The tar of a :class:`FolderListing`, addressed by byte offset."""

    def __init__(self, listing: FolderListing) -> None:
        self.listing = listing
        members: list[_Member] = []
        offset = 0
        for entry in listing.entries:
            member = _Member(start=offset, header_length=header_length(entry), entry=entry)
            members.append(member)
            offset = member.data_end + _padding(entry.size)
        self._members = tuple(members)
        self._starts = [member.start for member in members]
        self._end_of_members = offset
        self.size = offset + _END_OF_ARCHIVE
        """The archive's exact length in bytes."""

    def open_reader(self) -> TarReader:
        """A blocking reader; close it (or use ``with``) to release its open file."""
        return TarReader(self)

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` (fewer only past the end); blocking."""
        buffer = bytearray(max(0, min(length, self.size - offset)))
        with self.open_reader() as reader:
            count = reader.readinto(offset, memoryview(buffer))
        return bytes(buffer[:count])

    async def readinto(self, offset: int, view: memoryview) -> int:
        """Fill ``view`` from ``offset`` in a worker thread; return the bytes written."""

        def fill() -> int:
            with self.open_reader() as reader:
                return reader.readinto(offset, view)

        return await asyncio.to_thread(fill)

    def _locate(self, offset: int) -> int:
        return bisect.bisect_right(self._starts, offset) - 1

    def _next_start(self, index: int) -> int:
        following = index + 1
        return self._starts[following] if following < len(self._starts) else self._end_of_members


class TarReader:
    """Reads byte ranges of one :class:`TarArchive`, keeping at most one file open."""

    def __init__(self, archive: TarArchive) -> None:
        self._archive = archive
        self._open_entry: FolderEntry | None = None
        self._fd = -1
        self._lock = threading.Lock()
        self._reading = False
        self._close_after_read = False
        self._last_header: tuple[FolderEntry | None, bytes] = (None, b"")

    def __enter__(self) -> TarReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the open file; while a read runs in another thread, it closes it after."""
        with self._lock:
            if self._reading:
                self._close_after_read = True
                return
            self._close_file()

    def _close_file(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = -1
        self._open_entry = None

    def readinto(self, offset: int, view: memoryview) -> int:
        """Fill ``view`` with the archive's bytes from ``offset``; return how many."""
        with self._lock:
            self._reading = True
        try:
            return self._readinto(offset, view)
        finally:
            with self._lock:
                self._reading = False
                if self._close_after_read:
                    self._close_file()

    def _readinto(self, offset: int, view: memoryview) -> int:
        archive = self._archive
        if offset < 0:
            raise ValueError(f"offset must not be negative, not {offset}")
        wanted = min(len(view), max(0, archive.size - offset))
        members = archive._members
        index = archive._locate(offset)
        position, done = offset, 0
        while done < wanted:
            remaining = wanted - done
            if position >= archive._end_of_members:
                count = remaining
                view[done : done + count] = _ZEROS[:count]
            else:
                member = members[index]
                next_start = archive._next_start(index)
                if position < member.data_start:
                    skip = position - member.start
                    count = min(remaining, member.header_length - skip)
                    header = self._header(member)
                    view[done : done + count] = header[skip : skip + count]
                elif position < member.data_end:
                    count = min(remaining, member.data_end - position)
                    self._read_file(member, position - member.data_start, view[done : done + count])
                else:
                    count = min(remaining, next_start - position)
                    view[done : done + count] = _ZEROS[:count]
                if position + count >= next_start:
                    index += 1
            position += count
            done += count
        return done

    def _header(self, member: _Member) -> bytes:
        """The member's header, built once per reader visit (a read may stop inside it)."""
        if self._last_header[0] is not member.entry:
            self._last_header = (member.entry, build_member_header(member.entry))
        return self._last_header[1]

    def _read_file(self, member: _Member, offset: int, target: memoryview) -> None:
        entry = member.entry
        fd = self._open(entry)
        filled = 0
        while filled < len(target):
            try:
                chunk = os.preadv(fd, [target[filled:]], offset + filled)
            except OSError as exc:
                raise FileChangedError(
                    f"{display_path(entry.source)}: can no longer be read "
                    f"({exc.strerror or exc}); the import was stopped"
                ) from None
            if chunk == 0:
                raise FileChangedError(
                    f"{display_path(entry.source)} shrank during the upload (it ends at byte "
                    f"{offset + filled}, the listing said {entry.size}); the import was stopped"
                )
            filled += chunk

    def _open(self, entry: FolderEntry) -> int:
        if self._open_entry is entry:
            return self._fd
        self._close_file()
        shown = display_path(entry.source)
        try:
            fd = os.open(entry.source, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise FileChangedError(
                f"{shown} was removed during the upload; the import was stopped"
            ) from None
        except OSError as exc:
            raise FileChangedError(
                f"{shown}: can no longer be read ({exc.strerror or exc}); the import was stopped"
            ) from None
        try:
            _check_unchanged(entry, os.fstat(fd))
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._open_entry = fd, entry
        return fd


def _check_unchanged(entry: FolderEntry, info: os.stat_result) -> None:
    shown = display_path(entry.source)
    if (info.st_dev, info.st_ino) != (entry.device, entry.inode):
        raise FileChangedError(f"{shown} was replaced during the upload; the import was stopped")
    if info.st_size != entry.size:
        change = "grew" if info.st_size > entry.size else "shrank"
        raise FileChangedError(
            f"{shown} {change} during the upload ({entry.size} -> {info.st_size} bytes); "
            "the import was stopped"
        )
    if info.st_mtime_ns != entry.mtime_ns:
        raise FileChangedError(f"{shown} was modified during the upload; the import was stopped")
