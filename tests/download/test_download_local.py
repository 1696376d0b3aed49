"""The local side of a download (issue 16 items 3, 13, 14): planted links and devices, a full
or size-limited disk, and two runs on the same destination (real processes)."""

from __future__ import annotations

import asyncio
import errno
import os
import resource
import signal
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from kore_models.errors import LocalStorageError, LockedError
from kore_models.transfer.download import download_file
from kore_models.transfer.partfile import PartFile
from tests.download.download_support import cli_env, export_api, payload, run_cli, serve_ranges

if TYPE_CHECKING:
    from tests.download.conftest import ClientFor
    from tests.download.download_support import HostileServer


def _part(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


# ---- 3. never write through a link, never replace what is not a file -----------------


async def test_a_part_that_is_a_symlink_is_replaced_not_followed(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path
) -> None:
    data = payload(100_000)
    hostile.handler = serve_ranges(data)
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    dest = tmp_path / "model.tar"
    _part(dest).symlink_to(victim)

    await download_file(client_for(hostile.url).transport, f"{hostile.url}/f", dest)

    assert victim.read_bytes() == b"precious"
    assert dest.read_bytes() == data


async def test_a_part_hard_linked_to_another_file_leaves_that_file_alone(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path
) -> None:
    data = payload(100_000)
    hostile.handler = serve_ranges(data)
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    dest = tmp_path / "model.tar"
    os.link(victim, _part(dest))

    await download_file(client_for(hostile.url).transport, f"{hostile.url}/f", dest)

    assert victim.read_bytes() == b"precious"
    assert dest.read_bytes() == data


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _symlink(path: Path) -> None:
    target = path.with_name("elsewhere.txt")
    target.write_bytes(b"precious")
    path.symlink_to(target)


def _folder(path: Path) -> None:
    path.mkdir()


def _null_device(path: Path) -> None:
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")


@pytest.mark.parametrize(
    ("plant", "message"),
    [
        (_symlink, "is a symbolic link"),
        (_fifo, "not a regular file"),
        (_null_device, "not a regular file"),
        (_folder, "is a folder"),
    ],
    ids=["symlink", "fifo", "device", "folder"],
)
async def test_a_destination_that_is_not_a_regular_file_is_refused_before_any_request(
    hostile: HostileServer,
    client_for: ClientFor,
    tmp_path: Path,
    plant: Callable[[Path], None],
    message: str,
) -> None:
    hostile.handler = serve_ranges(payload(1000))
    dest = tmp_path / "model.tar"
    plant(dest)
    before = os.lstat(dest)

    with pytest.raises(LocalStorageError, match=message):
        await download_file(client_for(hostile.url).transport, f"{hostile.url}/f", dest)

    after = os.lstat(dest)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert hostile.seen == []
    assert not _part(dest).exists()


# ---- 13. a full disk is a local error, not retried ----------------------------------


async def test_a_full_disk_is_a_local_storage_error_and_is_not_retried(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile.handler = serve_ranges(payload(200_000))
    real_pwrite = os.pwrite
    written = 0

    def filling_pwrite(fd: int, data: Any, offset: int) -> int:
        nonlocal written
        if written >= 50_000:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        done = real_pwrite(fd, data, offset)
        written += done
        return done

    monkeypatch.setattr(os, "pwrite", filling_pwrite)
    dest = tmp_path / "model.tar"

    with pytest.raises(LocalStorageError, match="the disk is full"):
        await download_file(
            client_for(hostile.url).transport, f"{hostile.url}/f", dest, block_size=16 * 1024
        )

    assert len(hostile.seen) == 1
    assert written >= 50_000
    assert not dest.exists()


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # then writes past the limit fail: EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))


async def test_a_file_size_limit_ends_the_export_with_exit_12_after_one_request(
    hostile: HostileServer, tmp_path: Path
) -> None:
    export_api(hostile, payload(300_000))
    dest = tmp_path / "model.tar"

    code, _, err = await run_cli(
        "export",
        "cm-1",
        "-o",
        str(dest),
        env=cli_env(hostile.url, tmp_path),
        preexec=_limit_file_size,
    )

    assert code == 12, err
    assert "larger than this file system or process allows" in err
    assert "t0ken-abcdef" not in err
    assert [s.path_qs.split("?")[0] for s in hostile.seen] == [
        "/api/public/models/cm-1/export",
        "/dl",
    ]
    assert not dest.exists()


# ---- 14. two runs on one destination ------------------------------------------------


async def test_a_second_export_to_the_same_destination_exits_15_while_the_first_runs(
    hostile: HostileServer, tmp_path: Path
) -> None:
    data = payload(400_000)
    gate, started = asyncio.Event(), asyncio.Event()
    export_api(hostile, data, gate=gate, started=started)
    dest = tmp_path / "model.tar"
    env = cli_env(hostile.url, tmp_path)
    first = asyncio.create_task(run_cli("export", "cm-1", "-o", str(dest), env=env))
    await started.wait()

    code, _, err = await run_cli("export", "cm-1", "-o", str(dest), env=env)
    gate.set()
    first_code, _, first_err = await first

    assert code == 15, err
    assert "another kore-models run is downloading to" in err
    assert first_code == 0, first_err
    assert dest.read_bytes() == data
    assert sorted(os.listdir(tmp_path)) == ["model.tar", "state"] or sorted(
        os.listdir(tmp_path)
    ) == ["model.tar"]


async def test_a_run_asked_to_wait_for_the_lock_downloads_after_the_holder_leaves(
    hostile: HostileServer, client_for: ClientFor, tmp_path: Path
) -> None:
    data = payload(100_000)
    hostile.handler = serve_ranges(data)
    dest = tmp_path / "model.tar"
    holder = await PartFile.acquire(dest)
    kore = client_for(hostile.url)
    with pytest.raises(LockedError):
        await download_file(kore.transport, f"{hostile.url}/f", dest)

    waiting = asyncio.create_task(
        download_file(kore.transport, f"{hostile.url}/f", dest, wait_for_lock=True)
    )
    await asyncio.sleep(0)
    assert not waiting.done()
    assert hostile.seen == []
    await asyncio.to_thread(holder.close_now, keep=False)
    result = await waiting

    assert result.bytes == len(data)
    assert dest.read_bytes() == data
