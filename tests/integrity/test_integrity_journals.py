"""Finished imports leave no journal; ``journals`` lists the unfinished ones and cleans up."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from kore_models._atomic import write_json_atomically
from kore_models.cli import cli
from kore_models.emulator import RunningEmulator
from kore_models.errors import JobFailedError
from kore_models.transfer.journal import JournalRecord, fingerprint_file, journal_path
from kore_models.transfer.progress import ProgressEvent
from kore_models.types import JobDocument
from tests.support.transfer import CHUNK, ClientFactory, EmuControl


def journals_in(state: Path) -> list[str]:
    folder = state / "journals"
    return sorted(os.listdir(folder)) if folder.exists() else []


async def test_a_successful_and_a_failed_import_leave_no_journal(
    clients: ClientFactory, write_tar: Callable[[int], Path], tmp_path: Path
) -> None:
    kore = clients()
    good = write_tar(5 * CHUNK + 10)
    await kore.models.import_file(good)
    assert journals_in(tmp_path / "state") == []
    not_a_tar = tmp_path / "broken.tar"
    not_a_tar.write_bytes(b"\x01" * (3 * CHUNK))
    with pytest.raises(JobFailedError):
        await kore.models.import_file(not_a_tar)
    assert journals_in(tmp_path / "state") == []


async def test_a_complete_without_a_job_id_leaves_no_journal(
    clients: ClientFactory,
    write_tar: Callable[[int], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A completion that names no job: the session is done, nothing is left to resume."""
    kore = clients()
    complete = kore.files.complete

    async def complete_without_job_id(session_id: str) -> JobDocument:
        job = await complete(session_id)  # the server completes; its answer names a file
        return JobDocument.model_validate({"fileId": "f-1", "modelId": job.model_id})

    monkeypatch.setattr(kore.files, "complete", complete_without_job_id)
    result = await kore.models.import_file(write_tar(3 * CHUNK))
    assert result.dock_status_id is None
    assert journals_in(tmp_path / "state") == []


async def interrupted_import(clients: ClientFactory, ctl: EmuControl, source: Path) -> None:
    """Cancel an import once two chunks are acknowledged (the emulator is slowed down)."""
    await ctl.configure(throughput_bytes_per_second=1_000_000)
    reached = asyncio.Event()

    def on_progress(event: ProgressEvent) -> None:
        if event.chunks_done >= 2:
            reached.set()

    task = asyncio.create_task(
        clients().models.import_file(source, on_progress=on_progress, concurrency=2)
    )
    waiter = asyncio.create_task(reached.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    assert not task.done(), "the import ended before it could be interrupted"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def plant(state: Path, host: str, source: Path, **changes: Any) -> Path:
    """Write a journal for ``source`` as an interrupted import would have."""
    values: dict[str, Any] = {
        "host": host,
        "file_path": str(source.resolve()),
        "fingerprint": fingerprint_file(source),
        "chunk_size": CHUNK,
        "total_chunks": 4,
        "is_adapter": False,
        "session_id": "s-planted",
        "acknowledged": {0, 1},
        "expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        **changes,
    }
    path = journal_path(state, host, source)
    write_json_atomically(path, JournalRecord(**values).to_json())
    return path


def journals_cli(state: Path, *args: str) -> dict[str, Any]:
    """``kore-models journals --json ARGS`` with ``state`` as the state folder."""
    env = {"KORE_STATE_DIR": str(state)}
    result = CliRunner().invoke(cli, ["journals", "--json", *args], env=env)
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


async def run_journals(state: Path, *args: str) -> dict[str, Any]:
    """:func:`journals_cli` from async code (in a thread: the CLI runs its own loop)."""
    return await asyncio.to_thread(journals_cli, state, *args)


async def test_journals_lists_unfinished_imports_and_clean_removes_the_useless_ones(
    clients: ClientFactory,
    emu: RunningEmulator,
    ctl: EmuControl,
    write_tar: Callable[[int], Path],
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    interrupted = write_tar(12 * CHUNK)
    await interrupted_import(clients, ctl, interrupted)
    gone = write_tar(4 * CHUNK)
    changed = write_tar(4 * CHUNK)
    expired = write_tar(4 * CHUNK)
    waiting = write_tar(4 * CHUNK)
    planted = {
        "gone": plant(state, emu.url, gone),
        "changed": plant(state, emu.url, changed),
        "expired": plant(state, emu.url, expired, expires_at="2020-01-01T00:00:00Z"),
        "waiting": plant(state, emu.url, waiting, dock_status_id="ds-1", acknowledged={0, 1, 2, 3}),
    }
    gone.unlink()
    changed.write_bytes(b"x" * (4 * CHUNK + 1))
    folder = state / "journals"
    (folder / "0123.corrupt").write_text("{broken")
    (folder / "4567.json").write_text('{"version": 1, "host": 1e999999}')
    old_tmp = folder / ".abc.json.1234.tmp"
    old_tmp.write_text("{")
    an_hour_ago = time.time() - 3700
    os.utime(old_tmp, (an_hour_ago, an_hour_ago))
    fresh_tmp = folder / ".def.json.5678.tmp"  # a write in progress right now: kept
    fresh_tmp.write_text("{")
    (folder / "89ab.json.lock").write_text("12345")  # a run killed before its journal

    listed = await run_journals(state)
    by_path = {j["path"]: j for j in listed["journals"] if j["path"]}
    live = by_path[str(interrupted.resolve())]
    assert live["state"] == "resumable"
    assert live["host"] == emu.url
    assert 2 <= live["chunksAcknowledged"] < live["chunksTotal"] == 12
    assert live["sessionExpiresAt"]
    assert by_path[str(gone.resolve())]["state"] == "stale"
    assert by_path[str(changed.resolve())]["state"] == "stale"
    assert by_path[str(expired.resolve())]["state"] == "expired"
    assert by_path[str(waiting.resolve())]["state"] == "waiting"
    unreadable = sorted(Path(j["journal"]).name for j in listed["journals"] if not j["path"])
    assert unreadable == [".abc.json.1234.tmp", "0123.corrupt", "4567.json", "89ab.json.lock"]
    assert listed["removed"] == []

    cleaned = await run_journals(state, "--clean")
    removed = {Path(j["journal"]).name for j in cleaned["removed"]}
    assert removed == {
        planted["gone"].name,
        planted["changed"].name,
        planted["expired"].name,
        ".abc.json.1234.tmp",
        "0123.corrupt",
        "4567.json",
        "89ab.json.lock",
    }
    left = journals_in(state)
    assert sorted(left) == sorted(
        [
            journal_path(state, emu.url, interrupted).name,
            planted["waiting"].name,
            fresh_tmp.name,
        ]
    )
    # the kept journal still resumes: the rerun sends only the missing chunks
    await ctl.configure(throughput_bytes_per_second=None)
    result = await clients().models.import_file(interrupted)
    assert result.resumed
    assert result.chunks_resumed == live["chunksAcknowledged"]


def test_journals_without_a_state_folder_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["journals"], env={"KORE_STATE_DIR": str(tmp_path / "none")})
    assert result.exit_code == 0
    assert "no unfinished imports" in result.stdout


LOCK_HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, str(os.getpid()).encode())
print("locked", flush=True)
sys.stdin.readline()
"""


def test_clean_leaves_a_journal_that_a_running_import_holds(
    write_tar: Callable[[int], Path], tmp_path: Path
) -> None:
    state = tmp_path / "state"
    source = write_tar(4 * CHUNK)
    journal = plant(state, "http://127.0.0.1:9", source)
    source.write_bytes(b"y" * (4 * CHUNK))  # stale: the file changed under the import...
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(journal) + ".lock"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        listed = journals_cli(state)
        assert [j["state"] for j in listed["journals"]] == ["running"]
        cleaned = journals_cli(state, "--clean")
        assert cleaned["removed"] == []
        assert journal.exists()
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    cleaned = journals_cli(state, "--clean")  # ...which has stopped now
    assert [Path(j["journal"]) for j in cleaned["removed"]] == [journal]
    assert [j["state"] for j in cleaned["removed"]] == ["stale"]
    assert not journal.exists()


async def test_an_interrupted_folder_import_is_resumable_not_stale(
    clients: ClientFactory, ctl: EmuControl, tmp_path: Path
) -> None:
    """A folder's journal keeps the tar's fingerprint, not a file's: --clean must keep it."""
    folder = tmp_path / "model-folder"
    folder.mkdir()
    for number in range(3):
        (folder / f"shard-{number}.bin").write_bytes(os.urandom(5 * CHUNK))
    (folder / "config.json").write_text("{}")
    await interrupted_import(clients, ctl, folder)
    lone = tmp_path / "weights.safetensors"
    lone.write_bytes(os.urandom(6 * CHUNK))
    await ctl.configure(throughput_bytes_per_second=1_000_000)
    reached = asyncio.Event()

    def on_progress(event: ProgressEvent) -> None:
        if event.chunks_done >= 2:
            reached.set()

    task = asyncio.create_task(
        clients(concurrency=2).models.import_file(lone, as_tar=True, on_progress=on_progress)
    )
    waiter = asyncio.create_task(reached.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    state = tmp_path / "state"
    cleaned = await run_journals(state, "--clean")
    assert cleaned["removed"] == []
    kept = {j["path"]: j["state"] for j in cleaned["journals"]}
    assert kept == {str(folder.resolve()): "resumable", str(lone.resolve()): "resumable"}
    await ctl.configure(throughput_bytes_per_second=None)
    result = await clients().models.import_file(folder)
    assert result.resumed
