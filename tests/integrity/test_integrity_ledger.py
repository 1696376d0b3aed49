"""The SQLite ledger: rows, filters, several processes at once, and every bad ledger file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kore_models.cli.errors import EXIT_LOCAL_STORAGE, EXIT_LOCKED, exit_code_for
from kore_models.ledger import (
    SCHEMA_VERSION,
    Ledger,
    LedgerEntry,
    LedgerError,
    LedgerLockedError,
    LedgerVersionError,
    record_transfer,
)
from kore_models.ledger import store as ledger_module

HOST = "http://127.0.0.1:8700"
WHEN = datetime(2026, 12, 2, 6, 0, 0, 123000, tzinfo=UTC)


def entry(number: int = 0, **changes: object) -> LedgerEntry:
    values: dict[str, object] = {
        "direction": "import",
        "host": HOST,
        "path": f"/models/m{number}.tar",
        "size": 1000 + number,
        "started_at": WHEN,
        "finished_at": WHEN + timedelta(seconds=2.5),
        "seconds": 2.5,
        "sha256": f"{number:064x}",
        "model_id": f"cm-{number}",
        "dock_status_id": f"ds-{number}",
        "session_id": f"s-{number}",
        "status": "SUCCESS",
        "mtime_ns": 1_700_000_000_000_000_000 + number,
        "fingerprint": f"fp{number}",
    }
    values.update(changes)
    return LedgerEntry(**values)  # type: ignore[arg-type]


def test_rows_round_trip_with_filters_and_the_schema_version(tmp_path: Path) -> None:
    ledger = Ledger.in_state_dir(tmp_path / "state")
    assert ledger.entries() == []  # no file yet: an empty history, nothing created
    assert not ledger.path.exists()
    ids = [
        ledger.add(entry(1)),
        ledger.add(entry(2, host="https://other.example")),
        ledger.add(entry(3, direction="export", path="/models/m1.tar")),
    ]
    assert ids == [1, 2, 3]
    rows = ledger.entries()
    assert [r.id for r in rows] == ids
    assert rows[0] == entry(1, id=1)
    assert [r.id for r in ledger.entries(host=HOST)] == [1, 3]
    assert [r.id for r in ledger.entries(path="/models/m1.tar")] == [1, 3]
    assert [r.id for r in ledger.entries(direction="export")] == [3]
    assert [r.id for r in ledger.entries(limit=2)] == [2, 3]
    document = rows[0].to_json()
    assert document["startedAt"] == "2026-12-02T06:00:00.123Z"
    assert document["sha256"] == f"{1:064x}"
    assert document["modelId"] == "cm-1"
    with sqlite3.connect(ledger.path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_find_import_needs_the_same_file_on_the_same_host(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    ledger.add(entry(1))
    ledger.add(entry(1, status="FAILED", model_id="cm-failed"))
    same = {
        "host": HOST,
        "path": "/models/m1.tar",
        "size": 1001,
        "mtime_ns": 1_700_000_000_000_000_001,
        "fingerprint": "fp1",
    }
    found = ledger.find_import(**same)  # type: ignore[arg-type]
    assert found is not None
    assert found.model_id == "cm-1"
    for key, other in [
        ("host", "https://other"),
        ("size", 1002),
        ("mtime_ns", 5),
        ("fingerprint", "fpX"),
    ]:
        assert ledger.find_import(**{**same, key: other}) is None  # type: ignore[arg-type]


CHILD = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from kore_models.ledger import Ledger, LedgerEntry
ledger = Ledger(Path(sys.argv[1]), lock_timeout=120)
worker, rows = sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()
now = datetime.now(UTC)
for i in range(rows):
    ledger.add(LedgerEntry(direction="import", host="h", path=f"/w{worker}/{i}", size=i,
        started_at=now, finished_at=now, seconds=0.0, session_id=f"{worker}-{i}"))
print("done", flush=True)
"""


def test_four_processes_writing_at_once_leave_a_consistent_ledger(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ledger.sqlite3"
    rows = 40
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(worker), str(rows)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for worker in range(4)
    ]
    for child in children:  # every child is up before any writes: they start together
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.close()
    for child in children:
        assert child.stdout is not None
        assert child.stdout.read() == "done\n"
        assert child.wait() == 0
        child.stdout.close()
    ledger = Ledger(path)
    sessions = sorted(e.session_id or "" for e in ledger.entries())
    assert sessions == sorted(f"{w}-{i}" for w in range(4) for i in range(rows))
    assert ledger.integrity_check() == "ok"


async def test_tasks_of_one_process_write_from_worker_threads(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    threads: set[str] = set()
    add = ledger.add

    def spying_add(item: LedgerEntry) -> int:
        threads.add(threading.current_thread().name)
        return add(item)

    ledger.add = spying_add  # type: ignore[method-assign,assignment]
    warnings = await asyncio.gather(*(record_transfer(ledger, entry(n)) for n in range(12)))
    assert warnings == [None] * 12
    assert threading.main_thread().name not in threads
    assert sorted(e.model_id or "" for e in ledger.entries()) == sorted(
        f"cm-{n}" for n in range(12)
    )


@pytest.mark.parametrize(
    "content", [b"this is not a database" * 100, b"SQLite format 3\x00" + b"\xff" * 5000]
)
async def test_a_corrupt_ledger_is_a_warning_for_writers_and_an_error_for_readers(
    tmp_path: Path, content: bytes
) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    ledger.path.write_bytes(content)
    warning = await record_transfer(ledger, entry(1))
    assert warning is not None
    assert warning.startswith("the ledger was not updated: the ledger ")
    assert "is not a readable SQLite database" in warning
    with pytest.raises(LedgerError, match="move it aside") as caught:
        ledger.entries()
    assert exit_code_for(caught.value) == EXIT_LOCAL_STORAGE
    assert ledger.path.read_bytes() == content  # nothing was overwritten


async def test_a_ledger_from_a_newer_version_is_left_alone(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    ledger.add(entry(1))
    with sqlite3.connect(ledger.path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    warning = await record_transfer(ledger, entry(2))
    assert warning is not None
    assert "newer than this kore-models knows" in warning
    with pytest.raises(LedgerVersionError, match="upgrade kore-models") as caught:
        ledger.entries()
    assert exit_code_for(caught.value) == EXIT_LOCAL_STORAGE
    with sqlite3.connect(ledger.path) as raw:
        assert raw.execute("SELECT COUNT(*) FROM transfers").fetchone()[0] == 1


HOLDER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
db.execute("COMMIT")
print("released", flush=True)
sys.stdin.readline()
"""


def hold_lock(path: Path) -> subprocess.Popen[str]:
    """A second process that holds the ledger's write lock until told to let go."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "locked\n"
    return holder


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    assert holder.stdout is not None
    holder.stdin.write("\n")
    holder.stdin.flush()
    assert holder.stdout.readline() == "released\n"


def finish(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    assert holder.stdout is not None
    holder.stdin.close()
    holder.wait()
    holder.stdout.close()


async def test_a_ledger_locked_beyond_the_bound_is_a_warning(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.sqlite3", lock_timeout=0.2)
    ledger.add(entry(1))
    holder = hold_lock(ledger.path)
    try:
        warning = await record_transfer(ledger, entry(2))
        assert warning is not None
        assert "stayed locked by another process" in warning
        with pytest.raises(LedgerLockedError) as caught:
            ledger.add(entry(3))
        assert exit_code_for(caught.value) == EXIT_LOCKED
    finally:
        release(holder)
        finish(holder)
    assert [e.id for e in ledger.entries()] == [1]


def test_a_busy_ledger_is_retried_until_the_lock_is_free(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    Ledger(path).add(entry(1))
    holder = hold_lock(path)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:  # the first retry pause lets the holder go
        sleeps.append(seconds)
        if len(sleeps) == 1:
            release(holder)

    try:
        ledger = Ledger(path, lock_timeout=60, sleep=sleep)
        ledger._connect = _quick_busy(ledger._connect)  # type: ignore[method-assign,assignment]
        assert ledger.add(entry(2)) == 2
    finally:
        finish(holder)
    assert len(sleeps) >= 1


def _quick_busy(
    connect: Callable[[str], sqlite3.Connection],
) -> Callable[[str], sqlite3.Connection]:
    """Connections whose busy handler gives up at once, so the retry loop is exercised."""

    def quick(mode: str) -> sqlite3.Connection:
        connection = connect(mode)
        connection.execute("PRAGMA busy_timeout = 0")
        return connection

    return quick


WRITER = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from kore_models.ledger import Ledger, LedgerEntry
entry = LedgerEntry(direction="import", host="h", path="/p", size=1,
    started_at=datetime.now(UTC), finished_at=datetime.now(UTC), seconds=0.0)
try:
    Ledger(Path(sys.argv[1])).add(entry)
except Exception as exc:
    print(type(exc).__name__, exc)
else:
    print("written")
"""


@pytest.mark.parametrize("what", ["folder", "file"])
def test_a_read_only_ledger_or_folder_is_reported(
    tmp_path: Path, what: str, readonly_command: Callable[[Path, list[str]], list[str]]
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    path = state / "ledger.sqlite3"
    if what == "file":
        Ledger(path).add(entry(1))
    target = state if what == "folder" else path
    command = readonly_command(target, [sys.executable, "-c", WRITER, str(path)])
    if os.geteuid() != 0:
        target.chmod(0o555 if what == "folder" else 0o444)
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=True)
    finally:
        target.chmod(0o755 if what == "folder" else 0o644)
    assert result.stdout.startswith("LedgerError the ledger "), result.stdout + result.stderr
    assert "read-only" in result.stdout
    assert len(Ledger(path).entries()) == (1 if what == "file" else 0)


def test_the_insert_statement_names_the_columns_in_order() -> None:
    listed = ledger_module._INSERT.split("(")[1].split(")")[0]
    assert tuple(name.strip() for name in listed.split(",")) == ledger_module._COLUMNS
