"""Listing and cleaning the resume journals of unfinished imports in a state directory.

A journal is written when an import starts its upload session and removed when the import
ends (the job succeeded or failed, or ``--no-wait`` returned). What stays behind belongs
to an import that is *running* now (it holds the journal's lock) or was interrupted: it is
*resumable* (run the same import again), *waiting* for a job the upload already started,
or worth removing: *expired* (the server has forgotten its session), *stale* (the file is
gone or changed, so a rerun starts afresh anyway) or *unreadable* (set aside as
``*.corrupt``, or not a journal at all). Temporary files of an atomic write that a killed
process left behind count as unreadable once they are an hour old, and so do lock files
without a journal that no run holds.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..errors import JournalError, LocalFileError, LocalStorageError, LockedError
from .journal import JournalRecord, fingerprint_file
from .local_state import RunLock
from .source import prepare_source

__all__ = ["JournalInfo", "JournalState", "clean_journals", "scan_journals"]

MAX_JOURNAL_BYTES = 16 * 1024 * 1024
"""A journal is a few KiB; anything this large is not one."""
log = logging.getLogger("kore_models.journals")
TEMPORARY_AGE = 3600.0
"""Seconds after which an atomic write's temporary file is surely abandoned."""


class JournalState(StrEnum):
    """What an unfinished import's journal is good for."""

    RUNNING = "running"
    RESUMABLE = "resumable"
    WAITING = "waiting"
    EXPIRED = "expired"
    STALE = "stale"
    UNREADABLE = "unreadable"

    @property
    def removable(self) -> bool:
        """Whether ``journals --clean`` removes journals in this state."""
        return self in (JournalState.EXPIRED, JournalState.STALE, JournalState.UNREADABLE)


@dataclass(frozen=True)
class JournalInfo:
    """One journal file and what it says."""

    journal: Path
    state: JournalState
    reason: str
    file_path: str | None = None
    host: str | None = None
    acknowledged: int | None = None
    total_chunks: int | None = None
    expires_at: str | None = None
    session_id: str | None = None
    dock_status_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The camelCase object ``journals --json`` prints."""
        return {
            "journal": str(self.journal),
            "state": str(self.state),
            "reason": self.reason,
            "path": self.file_path,
            "host": self.host,
            "chunksAcknowledged": self.acknowledged,
            "chunksTotal": self.total_chunks,
            "sessionExpiresAt": self.expires_at,
            "sessionId": self.session_id,
            "dockStatusId": self.dock_status_id,
        }


def _state_of(record: JournalRecord, now: datetime) -> tuple[JournalState, str]:
    if record.dock_status_id is not None:
        return JournalState.WAITING, f"uploaded; job {record.dock_status_id} not yet awaited"
    path = Path(record.file_path)
    if record.expired(now, margin_seconds=0):
        return JournalState.EXPIRED, "the upload session has expired on the server"
    try:
        if path.is_dir():
            # Sent as a tar made with the import's --exclude/--include, which the journal
            # does not keep: a listing that differs from the default one may still match.
            if prepare_source(path).fingerprint() != record.fingerprint:
                return JournalState.RESUMABLE, (
                    "a folder: run the same import (same --exclude/--include) to resume "
                    "it; it starts afresh if the folder changed"
                )
        elif (
            fingerprint_file(path) != record.fingerprint
            # a lone file sent with --as-tar: the journal keeps its one-member tar's print
            and prepare_source(path, as_tar=True).fingerprint() != record.fingerprint
        ):
            return JournalState.STALE, "the file changed since the upload started"
    except FileNotFoundError:
        return JournalState.STALE, "the file no longer exists"
    except OSError as exc:
        return JournalState.STALE, f"the file cannot be read ({exc.strerror or exc})"
    except LocalFileError as exc:
        return JournalState.STALE, f"it cannot be sent any more ({exc})"
    return JournalState.RESUMABLE, "run the same import again to resume it"


def _held_by_a_run(journal: Path) -> bool:
    """Whether an import holds the run lock of ``journal`` right now (never waits)."""
    try:
        fd = os.open(journal.with_name(journal.name + ".lock"), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    finally:
        os.close(fd)
    return False


def _inspect(journal: Path, now: datetime) -> JournalInfo:
    if journal.suffix == ".lock":
        reason = "the lock file of an import that stopped before its journal was written"
        return JournalInfo(journal, JournalState.UNREADABLE, reason)
    if journal.suffix != ".json":
        return JournalInfo(journal, JournalState.UNREADABLE, "set aside as unreadable")
    try:
        if journal.stat().st_size > MAX_JOURNAL_BYTES:
            raise ValueError(f"larger than {MAX_JOURNAL_BYTES} bytes")
        record = JournalRecord.from_json(json.loads(journal.read_bytes().decode("utf-8")))
    except (OSError, ValueError, RecursionError, JournalError) as exc:
        return JournalInfo(journal, JournalState.UNREADABLE, f"not a usable journal ({exc})")
    state, reason = _state_of(record, now)
    if _held_by_a_run(journal):
        state, reason = JournalState.RUNNING, "an import is running it now"
    return JournalInfo(
        journal,
        state,
        reason,
        file_path=record.file_path,
        host=record.host,
        acknowledged=len(record.acknowledged),
        total_chunks=record.total_chunks,
        expires_at=record.expires_at,
        session_id=record.session_id,
        dock_status_id=record.dock_status_id,
    )


def scan_journals(
    state_dir: Path, *, now: datetime | None = None, wall_clock: float | None = None
) -> list[JournalInfo]:
    """Every journal under ``state_dir`` (blocking: call it in a thread), sorted by path.

    ``now`` (UTC) decides session expiry and ``wall_clock`` (epoch seconds) the age of
    temporary files; both default to the current time.
    """
    folder = state_dir / "journals"
    moment = now or datetime.now(UTC)
    epoch = time.time() if wall_clock is None else wall_clock
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    found: list[JournalInfo] = []
    for name in names:
        path = folder / name
        if name.startswith(".") and name.endswith(".tmp"):
            try:
                age = epoch - path.stat().st_mtime
            except OSError:
                continue
            if age >= TEMPORARY_AGE:
                reason = "an abandoned temporary file of a journal write"
                found.append(JournalInfo(path, JournalState.UNREADABLE, reason))
            continue
        journal = name.endswith((".json", ".corrupt")) and path.is_file()
        orphan_lock = (
            name.endswith(".json.lock")
            and name.removesuffix(".lock") not in names
            and not _held_by_a_run(path.with_suffix(""))
        )
        if journal or orphan_lock:
            found.append(_inspect(path, moment))
    return found


async def clean_journals(journals: list[JournalInfo]) -> list[JournalInfo]:
    """Remove the removable journals; return the ones actually removed.

    Each journal is removed under its run lock, so a journal that an import holds right
    now (say, a file that changed while it uploads) is left to that import.
    """
    removed: list[JournalInfo] = []
    for info in journals:
        if not info.state.removable:
            continue
        try:
            if info.journal.suffix == ".lock":  # released (and so removed) by RunLock
                async with RunLock(info.journal.with_suffix(""), doing="using this journal"):
                    pass
            elif info.journal.suffix == ".json":
                async with RunLock(info.journal, doing="using this journal"):
                    await asyncio.to_thread(_remove, info.journal)
            else:
                await asyncio.to_thread(_remove, info.journal)
        except LockedError as exc:
            log.info("kept %s: %s", info.journal, exc)
            continue
        except FileNotFoundError:
            continue
        removed.append(info)
    return removed


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise LocalStorageError(
            f"cannot remove the journal {path}: {exc.strerror or exc}"
        ) from None
