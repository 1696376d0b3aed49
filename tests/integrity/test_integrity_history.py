"""``kore-models history``: lists the ledger, filters it, and fails clearly on a bad ledger."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kore_models.cli import cli
from kore_models.cli.errors import EXIT_LOCAL_STORAGE, EXIT_LOCKED, EXIT_USAGE
from kore_models.ledger import SCHEMA_VERSION, Ledger, LedgerEntry
from kore_models.ledger import store as ledger_module

WHEN = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)


def add(state: Path, number: int, host: str, path: Path, direction: str = "import") -> None:
    Ledger.in_state_dir(state).add(
        LedgerEntry(
            direction=direction,  # type: ignore[arg-type]
            host=host,
            path=str(path),
            size=1024 * (number + 1),
            started_at=WHEN + timedelta(minutes=number),
            finished_at=WHEN + timedelta(minutes=number, seconds=3),
            seconds=3.0,
            sha256=f"{number:064x}",
            model_id=f"cm-{number}",
            status="SUCCESS",
        )
    )


def history(state: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["history", *args], env={"KORE_STATE_DIR": str(state)})


def test_history_lists_filters_and_prints_json(tmp_path: Path) -> None:
    state = tmp_path / "state"
    a, b = tmp_path / "a.tar", tmp_path / "b.tar"
    add(state, 0, "https://one.example", a)
    add(state, 1, "https://two.example", b)
    add(state, 2, "http://127.0.0.1:8700", a, direction="export")
    human = history(state)
    assert human.exit_code == 0, human.output
    lines = human.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("2026-12-02 06:00:03Z import")
    assert f"{a} -> https://one.example model cm-0 SUCCESS" in lines[0]
    assert f"sha256 {0:064x}" in lines[0]
    assert f"export {a} <- http://127.0.0.1:8700" in " ".join(lines[2].split())
    every = json.loads(history(state, "--json").stdout)
    assert [t["modelId"] for t in every["transfers"]] == ["cm-0", "cm-1", "cm-2"]
    assert every["ledger"] == str(state / "ledger.sqlite3")
    by_host = json.loads(history(state, "--json", "--host", "two.example").stdout)
    assert [t["modelId"] for t in by_host["transfers"]] == ["cm-1"]
    loopback = json.loads(history(state, "--json", "--host", "http://127.0.0.1:8700/").stdout)
    assert [t["modelId"] for t in loopback["transfers"]] == ["cm-2"]
    by_path = json.loads(history(state, "--json", "--path", str(a)).stdout)
    assert [t["modelId"] for t in by_path["transfers"]] == ["cm-0", "cm-2"]
    newest = json.loads(history(state, "--json", "--limit", "1").stdout)
    assert [t["modelId"] for t in newest["transfers"]] == ["cm-2"]


def test_history_of_an_empty_state_folder(tmp_path: Path) -> None:
    result = history(tmp_path / "nothing")
    assert result.exit_code == 0
    assert result.stdout.strip() == "no transfers recorded"
    assert not (tmp_path / "nothing").exists()  # reading creates nothing


def test_history_of_a_corrupt_or_newer_ledger_is_exit_12(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "ledger.sqlite3").write_bytes(b"\x00garbage" * 100)
    result = history(state, "--json")
    assert result.exit_code == EXIT_LOCAL_STORAGE
    error = json.loads(result.stdout)["error"]
    assert error["exitCode"] == EXIT_LOCAL_STORAGE
    assert "is not a readable SQLite database" in error["message"]
    (state / "ledger.sqlite3").unlink()
    add(state, 0, "https://one.example", tmp_path / "a.tar")
    with sqlite3.connect(state / "ledger.sqlite3") as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    result = history(state)
    assert result.exit_code == EXIT_LOCAL_STORAGE
    assert "newer than this kore-models knows" in result.stderr


HOLDER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA locking_mode = EXCLUSIVE")
db.execute("BEGIN EXCLUSIVE")
db.execute("SELECT COUNT(*) FROM transfers").fetchall()
print("locked", flush=True)
sys.stdin.readline()
"""


def test_history_of_a_ledger_held_exclusively_is_exit_15(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    add(state, 0, "https://one.example", tmp_path / "a.tar")
    path = state / "ledger.sqlite3"
    with sqlite3.connect(path) as raw:  # a rollback-journal ledger: readers wait for writers
        raw.execute("PRAGMA journal_mode = DELETE")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        monkeypatch.setattr(ledger_module, "LOCK_TIMEOUT", 0.2)
        result = history(state)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert result.exit_code == EXIT_LOCKED
    assert "stayed locked by another process" in result.stderr


def test_history_with_invalid_settings_in_the_environment_is_exit_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["history"], env={"KORE_STATE_DIR": str(tmp_path), "KORE_CONCURRENCY": "many"}
    )
    assert result.exit_code == EXIT_USAGE
    assert "invalid settings" in result.stderr


def test_history_reads_a_ledger_on_a_read_only_folder(
    tmp_path: Path, readonly_command: Callable[[Path, list[str]], list[str]]
) -> None:
    """SQLite cannot create its WAL index there; the ledger is read as immutable."""
    state = tmp_path / "state"
    add(state, 0, "https://one.example", tmp_path / "a.tar")
    kore_models = str(Path(sys.executable).with_name("kore-models"))
    command = readonly_command(state, [kore_models, "history", "--json"])
    if os.geteuid() != 0:
        state.chmod(0o555)
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={"KORE_STATE_DIR": str(state), "PATH": "/usr/bin:/bin"},
            check=False,
        )
    finally:
        state.chmod(0o755)
    assert result.returncode == 0, result.stderr
    assert [t["modelId"] for t in json.loads(result.stdout)["transfers"]] == ["cm-0"]
