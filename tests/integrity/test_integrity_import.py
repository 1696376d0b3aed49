"""Every import reports the SHA-256 of the bytes it sent: equal to ``sha256sum FILE``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from kore_models.cli import cli
from kore_models.emulator import RunningEmulator
from kore_models.transfer.hashing import UPLOAD_HASHER_NICENESS
from kore_models.transfer.progress import ProgressEvent
from tests.support.transfer import CHUNK, KEY, ClientFactory, EmuControl


@pytest.mark.parametrize(("size", "concurrency"), [(1024, 1), (7 * CHUNK + 99, 4), (40 * CHUNK, 8)])
async def test_the_import_result_carries_the_sha256_of_the_file(
    size: int,
    concurrency: int,
    clients: ClientFactory,
    ctl: EmuControl,
    write_tar: Callable[[int], Path],
    sha256sum: Callable[[Path], str],
) -> None:
    source = write_tar(size)
    result = await clients(concurrency=concurrency).models.import_file(source)
    assert result.sha256 == sha256sum(source)
    stored = await ctl.assert_stored(result.model_id, source)
    assert stored["sha256"] == result.sha256


async def test_a_resumed_import_hashes_the_chunks_an_earlier_run_sent(
    clients: ClientFactory,
    ctl: EmuControl,
    write_tar: Callable[[int], Path],
    sha256sum: Callable[[Path], str],
) -> None:
    source = write_tar(16 * CHUNK + 5)
    await ctl.configure(throughput_bytes_per_second=1_000_000)
    reached = asyncio.Event()

    def on_progress(event: ProgressEvent) -> None:
        if event.chunks_done >= 3:
            reached.set()

    task = asyncio.create_task(
        clients(concurrency=2).models.import_file(source, on_progress=on_progress)
    )
    waiter = asyncio.create_task(reached.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await ctl.configure(throughput_bytes_per_second=None)
    result = await clients().models.import_file(source)
    assert result.resumed
    assert result.chunks_resumed >= 3
    assert result.sha256 == sha256sum(source)


def cli_import(emu: RunningEmulator, state: Path, *args: str) -> tuple[int, str]:
    env = {"KORE_HOST": emu.url, "KORE_API_KEY": KEY, "KORE_STATE_DIR": str(state)}
    result = CliRunner().invoke(cli, ["import", *args], env=env)
    return result.exit_code, result.stdout


async def test_the_cli_prints_the_sha256_in_json_and_in_the_summary(
    emu: RunningEmulator,
    tmp_path: Path,
    write_tar: Callable[[int], Path],
    sha256sum: Callable[[Path], str],
) -> None:
    first, second = write_tar(3 * CHUNK), write_tar(5 * CHUNK)
    state = tmp_path / "state"
    code, stdout = await asyncio.to_thread(cli_import, emu, state, "--json", str(first))
    assert code == 0, stdout
    assert json.loads(stdout)["sha256"] == sha256sum(first)
    code, stdout = await asyncio.to_thread(cli_import, emu, state, str(second))
    assert code == 0, stdout
    assert f"sha256 {sha256sum(second)}" in stdout


def hashing_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "kore-sha256")


@pytest.mark.parametrize("where", ["setting", "call"])
async def test_checksum_off_hashes_nothing_and_reports_no_sha256(
    where: str,
    clients: ClientFactory,
    ctl: EmuControl,
    write_tar: Callable[[int], Path],
) -> None:
    source = write_tar(6 * CHUNK + 7)
    seen: list[int] = []

    def on_progress(event: ProgressEvent) -> None:
        seen.append(hashing_threads())

    if where == "setting":
        kore = clients(checksum=False)
        result = await kore.models.import_file(source, on_progress=on_progress)
    else:
        kore = clients()
        result = await kore.models.import_file(source, on_progress=on_progress, checksum=False)
    assert result.sha256 is None
    assert seen
    assert max(seen) == 0  # no hashing thread ran at any point of the import
    await ctl.assert_stored(result.model_id, source)  # the bytes still arrived whole
    assert result.model_dump(by_alias=True, mode="json")["sha256"] is None


async def test_the_cli_no_checksum_prints_no_sha256_and_verify_still_proves_the_model(
    emu: RunningEmulator,
    tmp_path: Path,
    write_tar: Callable[[int], Path],
    sha256sum: Callable[[Path], str],
) -> None:
    source = write_tar(4 * CHUNK)
    state = tmp_path / "state"
    code, stdout = await asyncio.to_thread(
        cli_import, emu, state, "--json", "--no-checksum", "--verify", str(source)
    )
    assert code == 0, stdout
    row = json.loads(stdout)
    assert row["sha256"] is None
    assert row["verified"] is True  # verify hashed the local file itself
    code, stdout = await asyncio.to_thread(cli_import, emu, state, "--no-checksum", str(source))
    assert code == 0, stdout
    assert "sha256" not in stdout


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
async def test_the_import_hashing_thread_runs_below_the_event_loop(
    clients: ClientFactory, write_tar: Callable[[int], Path]
) -> None:
    source = write_tar(8 * CHUNK)
    loop_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: set[int] = set()

    def on_progress(event: ProgressEvent) -> None:
        for thread in threading.enumerate():
            if thread.name == "kore-sha256" and thread.native_id is not None:
                with contextlib.suppress(OSError):  # the thread may just have ended
                    seen.add(os.getpriority(os.PRIO_PROCESS, thread.native_id))

    result = await clients(concurrency=2).models.import_file(source, on_progress=on_progress)
    assert result.sha256 is not None
    assert seen == {min(19, loop_nice + UPLOAD_HASHER_NICENESS)}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == loop_nice
