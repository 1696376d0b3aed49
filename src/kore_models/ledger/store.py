"""The ledger file: one SQLite table of completed transfers that several processes share.

How it works: ``<state_dir>/ledger.sqlite3`` holds one row per completed transfer (host,
path, size, mtime, fingerprint, SHA-256, model id, dock-status id, session id, direction,
start and finish times in UTC, seconds). It never holds the API key. The database runs in
WAL mode, so readers never block the writer; each write opens its own connection, takes
the write lock up front (``BEGIN IMMEDIATE``), inserts one row and commits, and a write
that finds the lock taken is retried until ``lock_timeout`` has passed. The schema version
lives in ``PRAGMA user_version``: a ledger written by a newer kore-models is refused, not
altered. Every method here blocks; transfers record themselves through
:mod:`kore_models.ledger.records`, which writes in a worker thread and turns any failure
into a warning, because a ledger that cannot be written must never fail the transfer.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import quote

from ..errors import LocalStorageError, LockedError

__all__ = [
    "LEDGER_FILE",
    "LOCK_TIMEOUT",
    "SCHEMA_VERSION",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "LedgerLockedError",
    "LedgerVersionError",
    "ledger_path",
    "utc_now",
]

log = logging.getLogger("kore_models.ledger")

LEDGER_FILE = "ledger.sqlite3"
SCHEMA_VERSION = 1
LOCK_TIMEOUT = 10.0
"""Seconds a write waits for another process's lock before it gives up."""
Direction = Literal["import", "export"]
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS transfers (
    id INTEGER PRIMARY KEY,
    direction TEXT NOT NULL CHECK (direction IN ('import', 'export')),
    host TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER,
    fingerprint TEXT,
    sha256 TEXT,
    model_id TEXT,
    dock_status_id TEXT,
    session_id TEXT,
    status TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    seconds REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS transfers_by_file ON transfers (host, path, size, mtime_ns);
"""
_COLUMNS = (
    "direction",
    "host",
    "path",
    "size",
    "mtime_ns",
    "fingerprint",
    "sha256",
    "model_id",
    "dock_status_id",
    "session_id",
    "status",
    "started_at",
    "finished_at",
    "seconds",
)
_INSERT = (
    "INSERT INTO transfers (direction, host, path, size, mtime_ns, fingerprint, sha256, "
    "model_id, dock_status_id, session_id, status, started_at, finished_at, seconds) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Primary SQLite result codes (the low byte of the extended code).
_BUSY_CODES = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
_CORRUPT_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
_UNWRITABLE_CODES = {3, 8, 14}  # SQLITE_PERM, SQLITE_READONLY, SQLITE_CANTOPEN
_FULL_CODE = 13  # SQLITE_FULL


class LedgerError(LocalStorageError):
    """The ledger cannot be read or written (corrupt, read-only, newer schema, ...)."""


class LedgerLockedError(LockedError):
    """Another process held the ledger's write lock for longer than the lock timeout."""


class LedgerVersionError(LedgerError):
    """The ledger was written by a newer kore-models whose schema this one does not know."""


def utc_now() -> datetime:
    """The current time in UTC (the ledger's clock)."""
    return datetime.now(UTC)


def ledger_path(state_dir: Path) -> Path:
    """Where the ledger of ``state_dir`` lives."""
    return state_dir / LEDGER_FILE


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class LedgerEntry:
    """One completed transfer. ``path`` is absolute; times are in UTC."""

    direction: Direction
    host: str
    path: str
    size: int
    started_at: datetime
    finished_at: datetime
    seconds: float
    sha256: str | None = None
    model_id: str | None = None
    dock_status_id: str | None = None
    session_id: str | None = None
    status: str | None = None
    mtime_ns: int | None = None
    fingerprint: str | None = None
    id: int | None = None

    def _row(self) -> tuple[Any, ...]:
        values = asdict(self)
        values["started_at"] = _iso(self.started_at)
        values["finished_at"] = _iso(self.finished_at)
        return tuple(values[name] for name in _COLUMNS)

    @classmethod
    def _from_row(cls, row: sqlite3.Row) -> LedgerEntry:
        values = {name: row[name] for name in _COLUMNS}
        for name in ("started_at", "finished_at"):
            values[name] = datetime.fromisoformat(str(values[name]).replace("Z", "+00:00"))
        return cls(id=int(row["id"]), **values)

    def to_json(self) -> dict[str, Any]:
        """The camelCase object ``history --json`` prints."""
        return {
            "id": self.id,
            "direction": self.direction,
            "host": self.host,
            "path": self.path,
            "size": self.size,
            "mtimeNs": self.mtime_ns,
            "fingerprint": self.fingerprint,
            "sha256": self.sha256,
            "modelId": self.model_id,
            "dockStatusId": self.dock_status_id,
            "sessionId": self.session_id,
            "status": self.status,
            "startedAt": _iso(self.started_at),
            "finishedAt": _iso(self.finished_at),
            "seconds": round(self.seconds, 3),
        }


def _primary_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


class Ledger:
    """The ledger file at ``path``; every method opens its own short-lived connection."""

    def __init__(
        self,
        path: Path,
        *,
        lock_timeout: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.path = path
        self.lock_timeout = LOCK_TIMEOUT if lock_timeout is None else lock_timeout
        self._clock = clock
        self._sleep = sleep

    @classmethod
    def in_state_dir(cls, state_dir: Path, **options: Any) -> Ledger:
        """The ledger of ``state_dir``."""
        return cls(ledger_path(state_dir), **options)

    # -- connections and errors ---------------------------------------------------------

    def _connect(self, mode: str, *, immutable: bool = False) -> sqlite3.Connection:
        uri = f"file:{quote(str(self.path))}?mode={mode}{'&immutable=1' if immutable else ''}"
        busy = max(0.05, min(2.0, self.lock_timeout))
        connection = sqlite3.connect(uri, uri=True, timeout=busy, isolation_level=None)
        connection.row_factory = sqlite3.Row
        return connection

    def _error(self, exc: BaseException, waited: float = 0.0) -> LedgerError | LedgerLockedError:
        where = str(self.path)
        if isinstance(exc, LedgerError | LedgerLockedError):
            return exc
        if isinstance(exc, OSError):
            return LedgerError(f"the ledger {where} cannot be written: {exc.strerror or exc}")
        assert isinstance(exc, sqlite3.Error)
        code = _primary_code(exc)
        detail = str(exc)
        if code in _BUSY_CODES:
            return LedgerLockedError(
                f"the ledger {where} stayed locked by another process for {waited:.1f} s"
            )
        if code in _CORRUPT_CODES:
            return LedgerError(
                f"the ledger {where} is not a readable SQLite database ({detail}); "
                "move it aside and a new one is started"
            )
        if code in _UNWRITABLE_CODES:
            return LedgerError(
                f"the ledger {where} cannot be opened ({detail}); "
                "is the disk or its folder read-only?"
            )
        if code == _FULL_CODE:
            return LedgerError(f"no space left on the disk of the ledger {where}")
        return LedgerError(f"the ledger {where} failed: {detail}")

    def _check_version(self, connection: sqlite3.Connection) -> int:
        version = int(connection.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise LedgerVersionError(
                f"the ledger {self.path} has schema version {version}, newer than this "
                f"kore-models knows ({SCHEMA_VERSION}); upgrade kore-models or use another "
                "state directory (KORE_STATE_DIR)"
            )
        return version

    def _prepare_for_writing(self, connection: sqlite3.Connection) -> None:
        mode = str(connection.execute("PRAGMA journal_mode").fetchone()[0]).lower()
        if mode != "wal":
            connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = FULL")
        if self._check_version(connection) == SCHEMA_VERSION:
            return
        connection.execute("BEGIN IMMEDIATE")
        try:
            if self._check_version(connection) < SCHEMA_VERSION:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            connection.execute("COMMIT")
        except BaseException:
            connection.rollback()
            raise

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """Run ``attempt`` again while the database is busy, up to ``lock_timeout``."""
        started = self._clock()
        pause = 0.02
        while True:
            try:
                return attempt()
            except (sqlite3.Error, OSError) as exc:
                waited = self._clock() - started
                busy = isinstance(exc, sqlite3.Error) and _primary_code(exc) in _BUSY_CODES
                if not busy or waited >= self.lock_timeout:
                    raise self._error(exc, waited) from None
                log.debug("the ledger is busy (%s); retrying", exc)
                self._sleep(min(pause * (0.5 + random.random()), self.lock_timeout - waited))
                pause = min(pause * 2, 0.5)

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def attempt() -> T:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = self._connect("rwc")
            try:
                self._prepare_for_writing(connection)
                connection.execute("BEGIN IMMEDIATE")
                try:
                    result = work(connection)
                    connection.execute("COMMIT")
                except BaseException:
                    connection.rollback()
                    raise
                return result
            finally:
                connection.close()

        return self._retrying(attempt)

    def _read(self, work: Callable[[sqlite3.Connection], T], empty: T) -> T:
        def attempt() -> T:
            if not self.path.exists():
                return empty
            connection = self._connect("ro")
            try:
                version = self._check_version(connection)
            except sqlite3.Error as exc:
                if _primary_code(exc) not in _UNWRITABLE_CODES:
                    connection.close()
                    raise
                # A read-only folder: SQLite cannot create the WAL index beside the file.
                # Nothing can write there either, so the file may be read as immutable.
                connection.close()
                connection = self._connect("ro", immutable=True)
                version = self._check_version(connection)
            try:
                if version < SCHEMA_VERSION:
                    return empty
                return work(connection)
            finally:
                connection.close()

        return self._retrying(attempt)

    # -- the public operations ----------------------------------------------------------

    def add(self, entry: LedgerEntry) -> int:
        """Insert ``entry`` (blocking); return its row id."""

        def insert(connection: sqlite3.Connection) -> int:
            cursor = connection.execute(_INSERT, entry._row())
            assert cursor.lastrowid is not None
            return int(cursor.lastrowid)

        return self._write(insert)

    def entries(
        self,
        *,
        host: str | None = None,
        path: str | None = None,
        direction: Direction | None = None,
        limit: int | None = None,
    ) -> list[LedgerEntry]:
        """Rows matching the filters, oldest first (the newest ``limit`` when given)."""
        where: list[str] = []
        args: list[Any] = []
        for column, value in (("host", host), ("path", path), ("direction", direction)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = "SELECT * FROM transfers"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)

        def select(connection: sqlite3.Connection) -> list[LedgerEntry]:
            rows = connection.execute(sql, args).fetchall()
            return [LedgerEntry._from_row(row) for row in reversed(rows)]

        return self._read(select, [])

    def find_import(
        self, *, host: str, path: str, size: int, mtime_ns: int, fingerprint: str
    ) -> LedgerEntry | None:
        """The newest completed import of this exact file (same host, size, mtime, sample)."""
        sql = (
            "SELECT * FROM transfers WHERE direction = 'import' AND host = ? AND path = ? "
            "AND size = ? AND mtime_ns = ? AND fingerprint = ? "
            "AND (status IS NULL OR status != 'FAILED') ORDER BY id DESC LIMIT 1"
        )

        def select(connection: sqlite3.Connection) -> LedgerEntry | None:
            row = connection.execute(sql, (host, path, size, mtime_ns, fingerprint)).fetchone()
            return None if row is None else LedgerEntry._from_row(row)

        return self._read(select, None)

    def integrity_check(self) -> str:
        """SQLite's own ``PRAGMA integrity_check`` verdict (``"ok"`` when sound)."""

        def check(connection: sqlite3.Connection) -> str:
            rows = connection.execute("PRAGMA integrity_check").fetchall()
            return "; ".join(str(row[0]) for row in rows)

        return self._read(check, "ok")
