"""The crash-safe resume journal of one import, and the file fingerprint it trusts.

How it works: one small JSON file per (host, absolute path) under the state folder
records the session id, its expiry, the chunk plan, a fingerprint of the file (size,
mtime and a SHA-256 of sampled blocks) and the chunks the server acknowledged. Every
save writes a temporary file and renames it over the old one, so a crash leaves either
the old or the new journal, never half of one. Saves that matter after a power loss (the
new session, the completion) are fsynced; the per-chunk saves are not (a lost one only
means that chunk is sent again), which keeps them cheap. Saves run in a thread and
coalesce: while one is being written, later changes wait and go out together. The
journal never holds the API key. A journal that cannot be parsed is set aside (renamed
``*.corrupt``) and the import starts afresh.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._atomic import write_json_atomically
from ..errors import JournalError
from ..types import check_server_id

__all__ = [
    "Fingerprint",
    "Journal",
    "JournalRecord",
    "fingerprint_file",
    "journal_path",
    "regular_file_fingerprint",
]

log = logging.getLogger("kore_models.journal")
JOURNAL_VERSION = 1
_MAX_JOURNAL_BYTES = 16 * 1024 * 1024
_SAMPLE_BLOCK = 64 * 1024
_SAMPLES = 16


@dataclass(frozen=True)
class Fingerprint:
    """Size, mtime and a digest of sampled blocks: cheap, and catches most edits."""

    size: int
    mtime_ns: int
    sampled_sha256: str


def fingerprint_file(path: Path) -> Fingerprint:
    """Fingerprint ``path`` (blocking: call it in a thread)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        stat = os.fstat(fd)
        digest = hashlib.sha256()
        size = stat.st_size
        if size <= _SAMPLE_BLOCK * _SAMPLES:
            offsets = list(range(0, size, _SAMPLE_BLOCK))
        else:
            step = (size - _SAMPLE_BLOCK) // (_SAMPLES - 1)
            offsets = [i * step for i in range(_SAMPLES)]
        for offset in offsets:
            digest.update(os.pread(fd, _SAMPLE_BLOCK, offset))
        return Fingerprint(size=size, mtime_ns=stat.st_mtime_ns, sampled_sha256=digest.hexdigest())
    finally:
        os.close(fd)


def regular_file_fingerprint(path: Path) -> Fingerprint | None:
    """The fingerprint of ``path`` when it is a readable regular file, else None (blocking).

    Nothing else is opened: opening a FIFO for reading would wait for a writer forever.
    """
    try:
        return fingerprint_file(path) if path.is_file() else None
    except OSError:
        return None


def journal_path(state_dir: Path, host: str, file_path: Path) -> Path:
    """Where the journal of importing ``file_path`` to ``host`` lives."""
    key = hashlib.sha256(f"{host}\n{file_path.resolve()}".encode()).hexdigest()[:32]
    return state_dir / "journals" / f"{key}.json"


def _id(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"an id must be a string, not {type(value).__name__}")
    return str(check_server_id(value))


def _optional_id(value: Any) -> str | None:
    return None if value is None else _id(value)


def _optional_text(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError("expires_at must be a string")
    return value


@dataclass
class JournalRecord:
    """What a resumed import needs to know."""

    host: str
    file_path: str
    fingerprint: Fingerprint
    chunk_size: int
    total_chunks: int
    is_adapter: bool
    session_id: str
    model_id: str | None = None
    expires_at: str | None = None
    acknowledged: set[int] = field(default_factory=set)
    dock_status_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON document written to disk."""
        data = asdict(self)
        data["acknowledged"] = sorted(self.acknowledged)
        data["version"] = JOURNAL_VERSION
        return data

    @classmethod
    def from_json(cls, data: Any) -> JournalRecord:
        """Parse a journal document; raise JournalError when it does not fit."""
        try:
            if not isinstance(data, dict) or data.get("version") != JOURNAL_VERSION:
                raise ValueError("unknown journal version")
            fp = data["fingerprint"]
            acknowledged = {int(n) for n in data.get("acknowledged", [])}
            record = cls(
                host=str(data["host"]),
                file_path=str(data["file_path"]),
                fingerprint=Fingerprint(
                    size=int(fp["size"]),
                    mtime_ns=int(fp["mtime_ns"]),
                    sampled_sha256=str(fp["sampled_sha256"]),
                ),
                chunk_size=int(data["chunk_size"]),
                total_chunks=int(data["total_chunks"]),
                is_adapter=bool(data["is_adapter"]),
                session_id=_id(data["session_id"]),
                model_id=_optional_id(data.get("model_id")),
                expires_at=_optional_text(data.get("expires_at")),
                acknowledged=acknowledged,
                dock_status_id=_optional_id(data.get("dock_status_id")),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise JournalError(f"the journal does not fit the expected shape: {exc}") from None
        if record.chunk_size < 1 or record.total_chunks < 1 or record.fingerprint.size < 0:
            raise JournalError("the journal's plan is not a valid chunk plan")
        if any(n < 0 or n >= record.total_chunks for n in record.acknowledged):
            raise JournalError("the journal lists chunk numbers outside the plan")
        return record

    def expired(self, now: datetime, margin_seconds: float = 60.0) -> bool:
        """True when the session expires within ``margin_seconds`` (unknown expiry: never)."""
        if not self.expires_at:
            return False
        try:
            when = datetime.fromisoformat(self.expires_at.replace("Z", "+00:00"))
        except ValueError:
            return True
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return (when - now).total_seconds() < margin_seconds


class Journal:
    """Loads, updates and atomically saves one :class:`JournalRecord`."""

    def __init__(self, path: Path):
        self.path = path
        self.record: JournalRecord | None = None
        self._lock = asyncio.Lock()
        self._dirty = False
        self._inflight: asyncio.Future[None] | None = None

    def load(self) -> JournalRecord | None:
        """Read the journal (blocking, small); an unusable one is set aside and None returned.

        Unusable means unreadable, larger than 16 MiB, not UTF-8 JSON, nested too deeply,
        holding values Python cannot take (``Infinity``, a 5000-digit number), or not the
        shape of a journal (including ids that are not safe URL path segments).
        """
        try:
            with open(self.path, "rb") as handle:
                raw = handle.read(_MAX_JOURNAL_BYTES + 1)
            if len(raw) > _MAX_JOURNAL_BYTES:
                raise JournalError("it is larger than any journal this tool writes")
            # bytes that are not UTF-8 (UnicodeDecodeError is a ValueError) are corrupt too
            return JournalRecord.from_json(json.loads(raw.decode("utf-8")))
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise JournalError(
                f"cannot read the journal {self.path}: it is a folder; remove it, "
                "or import with --no-resume"
            ) from None
        except (OSError, ValueError, OverflowError, RecursionError, JournalError) as exc:
            self._set_aside(exc)
            return None

    def _set_aside(self, why: BaseException) -> None:
        aside = self.path.with_suffix(".corrupt")
        try:
            os.replace(self.path, aside)
        except OSError as exc:
            raise JournalError(
                f"the resume journal {self.path} is unusable ({why}) and cannot be moved "
                f"aside ({exc.strerror}); remove it, or import with --no-resume"
            ) from None
        log.warning("the resume journal %s is unusable (%s); moved to %s", self.path, why, aside)

    def _write(self, document: dict[str, Any], durable: bool = True) -> None:
        write_json_atomically(self.path, document, durable=durable)

    async def save(self, *, durable: bool = False) -> None:
        """Write the current record atomically (fsynced if ``durable``); calls coalesce."""
        if self.record is None:
            return
        self._dirty = True
        async with self._lock:
            if self._inflight is not None and not self._inflight.done():
                # A save cancelled earlier left its write running: let it land first.
                await asyncio.shield(self._inflight)
            if not self._dirty or self.record is None:
                return
            self._dirty = False
            document = self.record.to_json()
            # Shielded: a cancelled caller must not abandon a write half-way in its thread.
            self._inflight = asyncio.ensure_future(
                asyncio.to_thread(self._write, document, durable)
            )
            try:
                await asyncio.shield(self._inflight)
            except OSError as exc:
                raise JournalError(f"cannot write the journal {self.path}: {exc}") from None

    def discard(self) -> None:
        """Remove the journal (the import finished, or its session is gone)."""
        self.record = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot remove the journal %s: %s", self.path, exc)
