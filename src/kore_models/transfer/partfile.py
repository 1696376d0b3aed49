"""The ``.part`` file of a download: safe open, its lock, its sidecar, writes and the final rename.

How it works: ``<dest>.part`` is opened with ``O_NOFOLLOW`` (a planted symlink is removed,
never followed; a hard-linked or non-regular file is refused or replaced) and locked with
a non-blocking ``flock`` on the open file, so a second run on the same destination gets
:class:`~kore_models.errors.LockedError` (or waits, when asked). The lock holder alone
writes ``<dest>.part.json``, the sidecar that ties the bytes to what they belong to (see
:class:`PartRecord`). Every local ``OSError`` becomes
:class:`~kore_models.errors.LocalStorageError`, never a retried "connection" failure.
The destination itself must be absent or a regular file: a symlink, device or folder is
refused before a byte is fetched, and checked again just before the rename.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from .._atomic import write_json_atomically
from ..errors import LocalStorageError, LockedError

__all__ = [
    "PartFile",
    "PartRecord",
    "check_destination",
    "in_thread",
    "part_path",
    "resolve_destination",
    "storage_error",
]

T = TypeVar("T")

LOCK_POLL_SECONDS = 0.2
"""How often a run that waits for another run's lock tries again."""

_HASH_BLOCK = 1024 * 1024
_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EFBIG: "the file is larger than this file system or process allows",
    errno.EISDIR: "it is a folder",
}


def storage_error(exc: OSError, path: Path, doing: str) -> LocalStorageError:
    """The LocalStorageError for a failed local operation (a retry cannot fix these)."""
    reason = _REASONS.get(exc.errno or 0) or exc.strerror or type(exc).__name__
    return LocalStorageError(f"cannot {doing} {path}: {reason}")


class PartRecord(BaseModel):
    """The sidecar ``<dest>.part.json``: what the part file holds and how far it got.

    ``source`` is the download URL without its query (no token); ``model_id`` ties an
    export's part to its model (each export job has a new URL). ``etag`` and
    ``last_modified`` are the server's validators, sent back as ``If-Range``; ``sha256``
    is the digest the server stated for the whole file, checked at the end.
    ``piece_size``/``done``/``progress`` describe a ranged download: finished pieces, and
    bytes written from the start of each piece in flight.
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    version: int = 1
    source: str
    model_id: str | None = None
    total: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    encoded: bool = False
    sha256: str | None = None
    piece_size: int | None = None
    done: list[int] = []
    progress: dict[str, int] = {}

    def belongs_to(self, source: str, model_id: str | None) -> bool:
        """True when this record describes a download of the same thing."""
        if model_id is not None or self.model_id is not None:
            return self.model_id == model_id
        return self.source == source


def check_destination(dest: Path) -> None:
    """Refuse a destination that is a symlink, a folder, a device or anything not a file."""
    try:
        info = os.lstat(dest)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise storage_error(exc, dest, "inspect") from None
    if stat.S_ISLNK(info.st_mode):
        raise LocalStorageError(
            f"{dest} is a symbolic link; downloads never write through links: "
            "remove it or choose another path"
        )
    if stat.S_ISDIR(info.st_mode):
        raise LocalStorageError(f"{dest} is a folder; give a file name inside it")
    if not stat.S_ISREG(info.st_mode):
        raise LocalStorageError(
            f"{dest} is not a regular file (a device, pipe or socket); refusing to replace it"
        )


def resolve_destination(dest: Path, name: str) -> Path:
    """``dest``, or ``dest/name`` when ``dest`` is a folder; checked by check_destination."""
    if dest.is_dir() and not dest.is_symlink():
        dest = dest / name
    check_destination(dest)
    return dest


class PartFile:
    """An open, locked ``<dest>.part`` with its sidecar. Blocking methods end in ``_now``."""

    def __init__(self, dest: Path, fd: int) -> None:
        self.dest = dest
        self.path = part_path(dest)
        self.sidecar = dest.with_name(dest.name + ".part.json")
        self.fd = fd

    # ---- opening and locking ------------------------------------------------------
    @classmethod
    async def acquire(cls, dest: Path, *, wait: bool = False) -> PartFile:
        """Open and lock ``<dest>.part``; LockedError if another run holds it (unless ``wait``)."""
        while True:
            try:
                return await asyncio.to_thread(cls._acquire_now, dest)
            except LockedError:
                if not wait:
                    raise
            await asyncio.sleep(LOCK_POLL_SECONDS)

    @classmethod
    def _acquire_now(cls, dest: Path) -> PartFile:
        check_destination(dest)
        part = part_path(dest)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, dest.parent, "create the folder") from None
        for _ in range(5):
            fd = _open_regular(part)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise LockedError(
                    f"another kore-models run is downloading to {dest} (it holds {part}); "
                    "wait for it to finish, or choose another destination"
                ) from None
            except OSError as exc:
                os.close(fd)
                raise storage_error(exc, part, "lock") from None
            # the run we waited for may have renamed or removed that inode meanwhile
            with contextlib.suppress(OSError):
                now, held = os.lstat(part), os.fstat(fd)
                if (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino):
                    return cls(dest, fd)
            os.close(fd)
        raise LockedError(f"{part} keeps changing under another kore-models run")

    # ---- the sidecar --------------------------------------------------------------
    def load_now(self) -> PartRecord | None:
        """The sidecar's record, or None when absent or unreadable (the part starts over)."""
        try:
            if os.path.islink(self.sidecar):
                return None
            text = self.sidecar.read_text(encoding="utf-8")
            return PartRecord.model_validate_json(text)
        except (OSError, ValueError, ValidationError):
            return None

    def save_now(self, record: PartRecord, *, sync_data: bool = False) -> None:
        """Write the sidecar atomically; ``sync_data`` flushes the part's data first and
        the sidecar itself (a power loss then cannot leave progress ahead of the data)."""
        try:
            if sync_data:
                os.fdatasync(self.fd)
            write_json_atomically(self.sidecar, record.model_dump(mode="json"), durable=sync_data)
        except OSError as exc:
            raise storage_error(exc, self.sidecar, "write") from None

    # ---- data ---------------------------------------------------------------------
    def size_now(self) -> int:
        """Bytes in the part file."""
        return os.fstat(self.fd).st_size

    def reset_now(self) -> None:
        """Empty the part file and forget its sidecar: the download starts over."""
        try:
            os.ftruncate(self.fd, 0)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.sidecar)
        except OSError as exc:
            raise storage_error(exc, self.path, "reset") from None

    def presize_now(self, total: int) -> None:
        """Make the part ``total`` bytes long, reserving the blocks where the OS can."""
        try:
            os.ftruncate(self.fd, total)
            with contextlib.suppress(AttributeError):
                try:
                    os.posix_fallocate(self.fd, 0, total)
                except OSError as exc:
                    if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                        raise
        except OSError as exc:
            raise storage_error(exc, self.path, "reserve space for") from None

    def write_now(self, data: bytes, offset: int, hasher: hashlib._Hash | None = None) -> None:
        """Write ``data`` at ``offset`` (and feed ``hasher``): one worker-thread hop."""
        view = memoryview(data)
        try:
            while view:
                done = os.pwrite(self.fd, view, offset)
                view, offset = view[done:], offset + done
        except OSError as exc:
            raise storage_error(exc, self.path, "write to") from None
        if hasher is not None:
            hasher.update(data)

    def read_now(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset``."""
        try:
            return os.pread(self.fd, length, offset)
        except OSError as exc:
            raise storage_error(exc, self.path, "read") from None

    def hash_now(self, hasher: hashlib._Hash, start: int, end: int) -> None:
        """Feed ``hasher`` the part's bytes ``[start, end)``, a block at a time."""
        while start < end:
            block = self.read_now(start, min(_HASH_BLOCK, end - start))
            if not block:
                raise LocalStorageError(f"{self.path} is shorter than expected ({start} bytes)")
            hasher.update(block)
            start += len(block)

    # ---- the end ------------------------------------------------------------------
    def finish_now(self, size: int) -> None:
        """Trim to ``size``, flush, and rename onto the destination (refused if unsafe)."""
        try:
            if os.fstat(self.fd).st_size != size:
                os.ftruncate(self.fd, size)
            os.fsync(self.fd)
            check_destination(self.dest)
            os.replace(self.path, self.dest)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.sidecar)
            _fsync_folder(self.dest.parent)
        except OSError as exc:
            raise storage_error(exc, self.dest, "save") from None

    def discard_now(self) -> None:
        """Remove the part and its sidecar (bytes that must not look like a good file)."""
        for path in (self.path, self.sidecar):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def close_now(self, *, keep: bool) -> None:
        """Unlock and close; without ``keep``, or when nothing was written, remove the part."""
        try:
            if not keep or (os.fstat(self.fd).st_size == 0 and not self.sidecar.exists()):
                self.discard_now()
        finally:
            os.close(self.fd)


async def in_thread(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` in a worker thread that is always waited for, even when cancelled.

    A cancelled ``to_thread`` leaves its thread running; one that still reads or writes
    the part's descriptor after the part is closed could touch another file.
    """
    future = asyncio.ensure_future(asyncio.to_thread(func, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        await asyncio.wait({future})
        if not future.cancelled():
            future.exception()
        raise


def part_path(dest: Path) -> Path:
    """``<dest>.part``."""
    return dest.with_name(dest.name + ".part")


def _open_regular(part: Path) -> int:
    """Open (creating) ``part`` for writing without following links; a regular, single-link file."""
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    for _ in range(3):
        try:
            fd = os.open(part, flags, 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # a planted symlink: remove the link, never follow it
                _unlink(part)
                continue
            raise storage_error(exc, part, "open") from None
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
            os.set_blocking(fd, True)
            return fd
        os.close(fd)
        if not stat.S_ISREG(info.st_mode):
            raise LocalStorageError(f"{part} is not a regular file; remove it and run again")
        _unlink(part)  # a hard link to another file: drop our name, leave that file alone
    raise LocalStorageError(f"{part} keeps being replaced; refusing to write to it")


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise storage_error(exc, path, "remove") from None


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
