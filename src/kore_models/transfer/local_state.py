"""The local state folder: checked writable before any request, and one-run-at-a-time locks.

How the lock works: ``<target>.lock`` is opened and ``flock``-ed without waiting; a
second run (another process, or another task of the same process) finds it held and
stops with :class:`~kore_models.errors.LockedError` naming the holder's pid. The lock
file is removed on release; a run that locked a file that was removed meanwhile (the
inode no longer matches the path) locks again, so removal never lets two runs in.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import tempfile
from pathlib import Path
from types import TracebackType

from ..errors import LocalStorageError, LockedError

__all__ = ["RunLock", "check_writable_dir"]


def check_writable_dir(folder: Path, *, what: str, hint: str) -> None:
    """Create ``folder`` and prove a file can be written there (blocking: use a thread).

    Raises LocalStorageError naming the folder, the reason and ``hint``.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=folder)
        try:
            os.write(fd, b"ok")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise LocalStorageError(f"the {what} {folder} is not writable ({reason}); {hint}") from None


class RunLock:
    """An exclusive, non-waiting lock on ``<target>.lock`` for the life of one run.

    Use as ``async with RunLock(path, doing="importing model.tar to https://..."):``.
    """

    def __init__(self, target: Path, *, doing: str) -> None:
        self.path = target.with_name(target.name + ".lock")
        self.doing = doing
        self._fd: int | None = None

    async def __aenter__(self) -> RunLock:
        self._fd = await asyncio.to_thread(self._acquire)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def _acquire(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = _read_pid(fd)
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    by = f" (pid {holder})" if holder else ""
                    raise LockedError(
                        f"another kore-models run{by} is already {self.doing}; wait for it "
                        f"to finish or stop it (lock file {self.path})"
                    ) from None
                raise
            if _same_file(fd, self.path):
                os.ftruncate(fd, 0)
                os.write(fd, str(os.getpid()).encode())
                return fd
            os.close(fd)  # the holder removed it as we opened it: lock the new one

    def release(self) -> None:
        """Remove the lock file and unlock (idempotent, never raises)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if _same_file(fd, self.path):
                self.path.unlink()
        except OSError:
            pass
        finally:
            os.close(fd)


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return text if text.isdigit() else ""
