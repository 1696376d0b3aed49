"""SQLite metadata (sessions, chunks, models, jobs) and the data-dir file layout."""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    file_context TEXT NOT NULL,
    total_chunks INTEGER NOT NULL,
    file_extension TEXT NOT NULL,
    file_name TEXT NOT NULL,
    file_size INTEGER NOT NULL,
    is_adapter INTEGER NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    model_id TEXT,
    completed INTEGER NOT NULL DEFAULT 0,
    file_id TEXT
);
CREATE TABLE IF NOT EXISTS chunks (
    session_id TEXT NOT NULL,
    chunk_number INTEGER NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (session_id, chunk_number)
);
CREATE TABLE IF NOT EXISTS models (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    file_name TEXT NOT NULL,
    file_extension TEXT NOT NULL,
    is_adapter INTEGER NOT NULL,
    state TEXT NOT NULL,
    size INTEGER,
    sha256 TEXT,
    discarded INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    action TEXT NOT NULL,
    created_at REAL NOT NULL,
    duration REAL NOT NULL,
    outcome TEXT NOT NULL,
    message TEXT,
    token TEXT,
    applied INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_by_model ON jobs (model_id, created_at);
"""


@dataclass(frozen=True)
class SessionRow:
    id: str
    file_context: str
    total_chunks: int
    file_extension: str
    file_name: str
    file_size: int
    is_adapter: bool
    created_at: float
    expires_at: float
    model_id: str | None
    completed: bool
    file_id: str | None


@dataclass(frozen=True)
class ModelRow:
    id: str
    session_id: str
    file_name: str
    file_extension: str
    is_adapter: bool
    state: str
    size: int | None
    sha256: str | None
    discarded: bool
    created_at: float


@dataclass(frozen=True)
class JobRow:
    id: str
    model_id: str
    action: str
    created_at: float
    duration: float
    outcome: str
    message: str | None
    token: str | None
    applied: bool


class Store:
    """Synchronous, thread-safe SQLite access; every call is a short indexed query."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.sessions_dir = data_dir / "sessions"
        self.models_dir = data_dir / "models"
        self.files_dir = data_dir / "files"
        for d in (self.sessions_dir, self.models_dir, self.files_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            data_dir / "emulator.sqlite3", isolation_level=None, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _exec(self, sql: str, args: tuple[Any, ...] = ()) -> None:
        with self._lock:
            self._db.execute(sql, args)

    def _one(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, args).fetchone()
            return row

    def _all(self, sql: str, args: tuple[Any, ...]) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    # paths -------------------------------------------------------------------------
    def session_dir(self, session_id: str) -> Path:
        return self.sessions_dir / session_id

    def chunk_path(self, session_id: str, n: int) -> Path:
        return self.session_dir(session_id) / f"{n}.part"

    def model_path(self, model_id: str) -> Path:
        return self.models_dir / f"{model_id}.bin"

    # sessions ----------------------------------------------------------------------
    def insert_session(self, row: SessionRow) -> None:
        self._exec(
            "INSERT INTO sessions VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                row.id,
                row.file_context,
                row.total_chunks,
                row.file_extension,
                row.file_name,
                row.file_size,
                int(row.is_adapter),
                row.created_at,
                row.expires_at,
                row.model_id,
                int(row.completed),
                row.file_id,
            ),
        )

    def get_session(self, session_id: str) -> SessionRow | None:
        r = self._one("SELECT * FROM sessions WHERE id=?", (session_id,))
        if r is None:
            return None
        return SessionRow(
            id=r["id"],
            file_context=r["file_context"],
            total_chunks=r["total_chunks"],
            file_extension=r["file_extension"],
            file_name=r["file_name"],
            file_size=r["file_size"],
            is_adapter=bool(r["is_adapter"]),
            created_at=r["created_at"],
            expires_at=r["expires_at"],
            model_id=r["model_id"],
            completed=bool(r["completed"]),
            file_id=r["file_id"],
        )

    def complete_session(self, session_id: str, file_id: str | None) -> None:
        self._exec("UPDATE sessions SET completed=1, file_id=? WHERE id=?", (file_id, session_id))

    def put_chunk(self, session_id: str, n: int, size: int) -> None:
        self._exec(
            "INSERT OR REPLACE INTO chunks (session_id, chunk_number, size) VALUES (?,?,?)",
            (session_id, n, size),
        )

    def chunk_sizes(self, session_id: str) -> dict[int, int]:
        rows = self._all(
            "SELECT chunk_number, size FROM chunks WHERE session_id=? ORDER BY chunk_number",
            (session_id,),
        )
        return {int(r["chunk_number"]): int(r["size"]) for r in rows}

    # models ------------------------------------------------------------------------
    def insert_model(self, row: ModelRow) -> None:
        self._exec(
            "INSERT INTO models VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                row.id,
                row.session_id,
                row.file_name,
                row.file_extension,
                int(row.is_adapter),
                row.state,
                row.size,
                row.sha256,
                int(row.discarded),
                row.created_at,
            ),
        )

    def get_model(self, model_id: str) -> ModelRow | None:
        r = self._one("SELECT * FROM models WHERE id=?", (model_id,))
        if r is None:
            return None
        return ModelRow(
            id=r["id"],
            session_id=r["session_id"],
            file_name=r["file_name"],
            file_extension=r["file_extension"],
            is_adapter=bool(r["is_adapter"]),
            state=r["state"],
            size=r["size"],
            sha256=r["sha256"],
            discarded=bool(r["discarded"]),
            created_at=r["created_at"],
        )

    def set_model_state(self, model_id: str, state: str) -> None:
        self._exec("UPDATE models SET state=? WHERE id=?", (state, model_id))

    def set_model_content(
        self, model_id: str, size: int, sha256: str | None, discarded: bool
    ) -> None:
        self._exec(
            "UPDATE models SET size=?, sha256=?, discarded=? WHERE id=?",
            (size, sha256, int(discarded), model_id),
        )

    # jobs --------------------------------------------------------------------------
    def insert_job(self, row: JobRow) -> None:
        self._exec(
            "INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?)",
            (
                row.id,
                row.model_id,
                row.action,
                row.created_at,
                row.duration,
                row.outcome,
                row.message,
                row.token,
                int(row.applied),
            ),
        )

    @staticmethod
    def _job(r: sqlite3.Row) -> JobRow:
        return JobRow(
            id=r["id"],
            model_id=r["model_id"],
            action=r["action"],
            created_at=r["created_at"],
            duration=r["duration"],
            outcome=r["outcome"],
            message=r["message"],
            token=r["token"],
            applied=bool(r["applied"]),
        )

    def get_job(self, job_id: str) -> JobRow | None:
        r = self._one("SELECT * FROM jobs WHERE id=?", (job_id,))
        return None if r is None else self._job(r)

    def import_job_id(self, model_id: str) -> str | None:
        """The id of the IMPORT job of a model (the one its session's complete created)."""
        row = self._one(
            "SELECT id FROM jobs WHERE model_id = ? AND action = 'IMPORT' "
            "ORDER BY created_at LIMIT 1",
            (model_id,),
        )
        return None if row is None else str(row["id"])

    def unapplied_jobs(self, model_id: str) -> list[JobRow]:
        rows = self._all(
            "SELECT * FROM jobs WHERE model_id=? AND applied=0 ORDER BY created_at, rowid",
            (model_id,),
        )
        return [self._job(r) for r in rows]

    def mark_applied(self, job_id: str) -> None:
        self._exec("UPDATE jobs SET applied=1 WHERE id=?", (job_id,))

    # housekeeping ------------------------------------------------------------------
    def delete_model(self, model_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM jobs WHERE model_id=?", (model_id,))
            self._db.execute("DELETE FROM models WHERE id=?", (model_id,))

    def expired_sessions_with_chunks(self, now: float) -> list[str]:
        rows = self._all(
            "SELECT DISTINCT s.id FROM sessions s JOIN chunks c ON c.session_id = s.id "
            "WHERE s.completed = 0 AND s.expires_at <= ?",
            (now,),
        )
        return [str(r["id"]) for r in rows]

    def drop_chunks(self, session_id: str) -> None:
        self._exec("DELETE FROM chunks WHERE session_id=?", (session_id,))

    def stored_bytes(self) -> int:
        """Bytes the data folder holds: models, general files and chunks of open sessions."""
        row = self._one(
            "SELECT "
            "(SELECT COALESCE(SUM(size), 0) FROM models WHERE discarded = 0) + "
            "(SELECT COALESCE(SUM(file_size), 0) FROM sessions WHERE file_id IS NOT NULL) + "
            "(SELECT COALESCE(SUM(c.size), 0) FROM chunks c JOIN sessions s "
            " ON s.id = c.session_id WHERE s.completed = 0) AS total",
            (),
        )
        return int(row["total"]) if row is not None else 0

    def outstanding_bytes(self, now: float) -> int:
        """Bytes that open, unexpired sessions announced (fileSize) but have not sent yet."""
        row = self._one(
            "SELECT COALESCE(SUM(MAX(0, s.file_size - COALESCE(("
            "  SELECT SUM(size) FROM chunks c WHERE c.session_id = s.id), 0))), 0) AS total "
            "FROM sessions s WHERE s.completed = 0 AND s.expires_at > ?",
            (now,),
        )
        return int(row["total"]) if row is not None else 0
