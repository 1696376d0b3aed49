"""Imports write the ledger; --skip-existing and the re-import warning; bad ledgers only warn."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kore_models.emulator import RunningEmulator
from kore_models.ledger import SCHEMA_VERSION, Ledger
from kore_models.ledger import store as ledger_module
from kore_models.transfer.journal import regular_file_fingerprint
from tests.support.transfer import CHUNK, KEY, ClientFactory

KORE_MODELS = str(Path(sys.executable).with_name("kore-models"))


async def kore_models(
    emu: RunningEmulator, state: Path, *args: str, wrap: list[str] | None = None
) -> tuple[int, str, str]:
    """The CLI in its own process (the emulator keeps serving from this event loop)."""
    env = {
        "KORE_HOST": emu.url,
        "KORE_API_KEY": KEY,
        "KORE_STATE_DIR": str(state),
        "PATH": "/usr/bin:/bin",
        **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
    }
    process = await asyncio.create_subprocess_exec(
        *(wrap or []),
        KORE_MODELS,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_an_import_writes_one_ledger_row_without_the_key(
    clients: ClientFactory,
    write_tar: Callable[[int], Path],
    sha256sum: Callable[[Path], str],
    tmp_path: Path,
) -> None:
    kore = clients()
    source = write_tar(6 * CHUNK + 1)
    result = await kore.models.import_file(source)
    rows = Ledger.in_state_dir(tmp_path / "state").entries()
    assert len(rows) == 1
    row = rows[0]
    assert (row.direction, row.host, row.path) == ("import", kore.settings.host, str(source))
    assert row.size == source.stat().st_size
    assert row.mtime_ns == source.stat().st_mtime_ns
    assert row.sha256 == sha256sum(source) == result.sha256
    assert (row.model_id, row.dock_status_id, row.session_id, row.status) == (
        result.model_id,
        result.dock_status_id,
        result.session_id,
        "SUCCESS",
    )
    assert row.finished_at > row.started_at
    assert row.fingerprint
    for file in (tmp_path / "state").iterdir():
        if file.is_file():
            assert KEY.encode() not in file.read_bytes()


async def test_a_reimport_warns_and_skip_existing_skips(
    emu: RunningEmulator, write_tar: Callable[[int], Path], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    source = write_tar(3 * CHUNK)
    code, out, _ = await kore_models(emu, state, "import", "--json", str(source))
    assert code == 0
    first = json.loads(out)
    code, out, err = await kore_models(emu, state, "import", "--json", str(source))
    assert code == 0
    assert f"was already imported to {emu.url} as model {first['modelId']}" in err
    assert json.loads(out)["modelId"] != first["modelId"]  # a second model, as warned
    code, out, err = await kore_models(emu, state, "import", "--skip-existing", str(source))
    assert code == 0
    assert "skipping" in err
    assert "skipped" in out
    code, out, _ = await kore_models(emu, state, "import", "--skip-existing", "--json", str(source))
    skipped = json.loads(out)
    assert skipped["skipped"] is True
    assert skipped["sha256"] == first["sha256"]
    source.write_bytes(source.read_bytes()[:-1] + b"!")  # changed: imported again
    code, out, err = await kore_models(
        emu, state, "import", "--skip-existing", "--json", str(source)
    )
    assert code == 0
    assert "skipped" not in json.loads(out)
    assert "already imported" not in err


def corrupt(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a database at all" * 50)


def newer(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")


@pytest.mark.parametrize(
    ("spoil", "says"),
    [(corrupt, "is not a readable SQLite database"), (newer, "newer than this kore-models")],
)
async def test_a_bad_ledger_does_not_fail_the_import(
    emu: RunningEmulator,
    write_tar: Callable[[int], Path],
    tmp_path: Path,
    spoil: Callable[[Path], None],
    says: str,
) -> None:
    state = tmp_path / "state"
    spoil(state / "ledger.sqlite3")
    source = write_tar(2 * CHUNK)
    code, out, err = await kore_models(emu, state, "import", "--json", str(source))
    assert code == 0, err
    assert json.loads(out)["status"] == "SUCCESS"
    assert "the ledger was not updated: the ledger" in err
    assert says in err
    code, out, err = await kore_models(emu, state, "history")
    assert code == 12
    assert says in err


async def test_a_read_only_ledger_does_not_fail_the_import(
    emu: RunningEmulator,
    write_tar: Callable[[int], Path],
    tmp_path: Path,
    readonly_command: Callable[[Path, list[str]], list[str]],
) -> None:
    state = tmp_path / "state"
    ledger = Ledger.in_state_dir(state)
    ledger.path.parent.mkdir(parents=True)
    ledger.path.touch()
    wrap = readonly_command(ledger.path, [])
    source = write_tar(2 * CHUNK)
    code, out, err = await kore_models(emu, state, "import", "--json", str(source), wrap=wrap)
    assert code == 0, err
    assert json.loads(out)["status"] == "SUCCESS"
    assert "the ledger was not updated" in err
    assert "read-only" in err
    assert ledger.entries() == []


async def test_a_locked_ledger_does_not_fail_the_import(
    clients: ClientFactory,
    write_tar: Callable[[int], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(ledger_module, "LOCK_TIMEOUT", 0.2)
    path = tmp_path / "state" / "ledger.sqlite3"
    path.parent.mkdir(parents=True)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode = WAL")
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = await clients().models.import_file(write_tar(2 * CHUNK))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.status == "SUCCESS"
    assert "the ledger was not updated" in caplog.text
    assert "stayed locked by another process" in caplog.text


async def test_four_cli_imports_at_once_leave_a_consistent_ledger(
    emu: RunningEmulator,
    write_tar: Callable[[int], Path],
    sha256sum: Callable[[Path], str],
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    sources = [write_tar((4 + n) * CHUNK) for n in range(4)]
    runs = await asyncio.gather(
        *(kore_models(emu, state, "import", "--json", str(s)) for s in sources)
    )
    documents: list[dict[str, Any]] = []
    for code, out, err in runs:
        assert code == 0, err
        assert "ledger" not in err
        documents.append(json.loads(out))
    ledger = Ledger.in_state_dir(state)
    rows = {row.path: row for row in ledger.entries()}
    assert sorted(rows) == sorted(str(s) for s in sources)
    for source, document in zip(sources, documents, strict=True):
        assert rows[str(source)].sha256 == sha256sum(source) == document["sha256"]
        assert rows[str(source)].model_id == document["modelId"]
    assert ledger.integrity_check() == "ok"
    code, out, _ = await kore_models(emu, state, "history", "--json")
    assert code == 0
    assert len(json.loads(out)["transfers"]) == 4


def test_looking_for_an_earlier_import_never_opens_a_fifo(tmp_path: Path) -> None:
    """Opening a FIFO for reading blocks until a writer comes: the lookup must not try."""
    fifo = tmp_path / "model.tar"
    os.mkfifo(fifo)
    assert regular_file_fingerprint(fifo) is None
    assert regular_file_fingerprint(tmp_path / "missing.tar") is None


async def test_an_export_writes_its_ledger_row(
    clients: ClientFactory,
    write_tar: Callable[[int], Path],
    sha256sum: Callable[[Path], str],
    tmp_path: Path,
) -> None:
    kore = clients()
    source = write_tar(5 * CHUNK)
    imported = await kore.models.import_file(source)
    assert imported.model_id is not None
    dest = tmp_path / "exported.tar"
    exported = await kore.models.export_to_file(imported.model_id, dest)
    started = await kore.models.export(imported.model_id)
    assert started.dock_status_id is not None
    again = tmp_path / "again.tar"
    await kore.models.download_export(started.dock_status_id, again)
    rows = Ledger.in_state_dir(tmp_path / "state").entries(direction="export")
    assert [(r.path, r.model_id) for r in rows] == [
        (str(dest), imported.model_id),
        (str(again), imported.model_id),
    ]
    assert {r.sha256 for r in rows} == {sha256sum(source)}
    assert rows[0].size == exported.bytes
    assert rows[0].dock_status_id == exported.dock_status_id
