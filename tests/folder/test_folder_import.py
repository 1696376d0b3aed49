"""Importing a folder into the live emulator: round trip, resume, changes, lone model files."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from kore_models import ImportResult, KoreClient
from kore_models.errors import FileChangedError, LocalFileError
from kore_models.transfer.folder import FolderFilter, list_folder
from kore_models.transfer.journal import Journal, journal_path
from kore_models.transfer.progress import Phase, ProgressEvent
from kore_models.transfer.tarstream import TarArchive
from tests.support.folders import snapshot, write_tree
from tests.support.transfer import CHUNK, EmuControl

EXCLUDED = (".git", "__pycache__")


async def gnu_tar(*args: str) -> str:
    """Run GNU tar; its stdout (it must succeed without a word on stderr)."""
    process = await asyncio.create_subprocess_exec(
        "tar", *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err
    assert err == b""
    return out.decode()


def archive_sha256(root: Path) -> tuple[int, str]:
    data = TarArchive(list_folder(root)).read(0, 1 << 40)
    return len(data), hashlib.sha256(data).hexdigest()


async def test_a_folder_round_trips_through_import_export_and_gnu_tar(
    kore: KoreClient, ctl: EmuControl, model_folder: Path, tmp_path: Path
) -> None:
    result = await kore.models.import_file(model_folder, concurrency=4)
    assert result.status == "SUCCESS"
    size, digest = archive_sha256(model_folder)
    assert result.bytes == size
    assert result.chunks == -(-size // CHUNK)
    stored = await ctl.model(str(result.model_id))
    assert (stored["size"], stored["sha256"], stored["fileName"]) == (size, digest, "my-model.tar")
    exported = await kore.models.export_to_file(str(result.model_id), tmp_path / "export.tar")
    out = tmp_path / "extracted"
    out.mkdir()
    await gnu_tar("-xf", str(exported.path), "-C", str(out))
    assert snapshot(out) == snapshot(model_folder, skip=EXCLUDED)


async def test_exclude_and_include_choose_the_members(
    kore: KoreClient, ctl: EmuControl, tmp_path: Path
) -> None:
    root = write_tree(
        tmp_path / "m",
        {"config.json": b"{}", "w.safetensors": b"w" * 1000, "optimizer.pt": b"o" * 1000},
    )
    result = await kore.models.import_file(root, exclude=["*"], include=["*.safetensors"])
    only = TarArchive(list_folder(root, FolderFilter(exclude=["*"], include=["*.safetensors"])))
    assert [e.path for e in only.listing.entries] == ["w.safetensors"]
    stored = await ctl.model(str(result.model_id))
    expected = hashlib.sha256(only.read(0, only.size)).hexdigest()
    assert (stored["size"], stored["sha256"]) == (only.size, expected)


async def test_failed_chunks_of_a_folder_are_retried_from_their_offset(
    kore: KoreClient, ctl: EmuControl, model_folder: Path
) -> None:
    await ctl.script(
        {"route": "chunk", "action": "reset", "after_bytes": 20_000},
        {"route": "chunk", "action": "503"},
        {"route": "chunk", "action": "reset", "after_bytes": 50_000},
    )
    result = await kore.models.import_file(model_folder, concurrency=3)
    assert result.retries == 3
    size, digest = archive_sha256(model_folder)
    stored = await ctl.model(str(result.model_id))
    assert (stored["size"], stored["sha256"]) == (size, digest)


# ---- resume --------------------------------------------------------------------------


@pytest.fixture
def big_folder(tmp_path: Path) -> Path:
    """About 30 chunks of 64 KiB over a few files."""
    files: dict[str, bytes | None] = {"config.json": b"{}"}
    files.update({f"shard-{i}.safetensors": os.urandom(300_000) for i in range(6)})
    return write_tree(tmp_path / "big", files)


async def test_an_interrupted_folder_import_resumes_with_the_missing_chunks(
    kore: KoreClient, ctl: EmuControl, big_folder: Path
) -> None:
    await ctl.configure(throughput_bytes_per_second=1_000_000)
    reached = asyncio.Event()

    def progress(event: ProgressEvent) -> None:
        if event.chunks_done >= 5:
            reached.set()

    task = asyncio.create_task(kore.models.import_file(big_folder, on_progress=progress))
    waiter = asyncio.create_task(reached.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    assert reached.is_set()
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    journal = Journal(journal_path(kore.settings.state_dir, kore.settings.host, big_folder))
    record = journal.load()
    assert record is not None
    acknowledged = len(record.acknowledged)
    assert acknowledged >= 5
    await ctl.configure(throughput_bytes_per_second=None)
    result = await kore.models.import_file(big_folder)
    assert result.resumed
    assert result.chunks_resumed == acknowledged
    assert result.chunks_sent == result.chunks - acknowledged
    size, digest = archive_sha256(big_folder)
    stored = await ctl.model(str(result.model_id))
    assert (stored["size"], stored["sha256"]) == (size, digest)


# ---- a folder that changes -----------------------------------------------------------


def _grow(root: Path) -> None:
    with open(root / "shard-3.safetensors", "ab") as handle:
        handle.write(b"more")


def _shrink(root: Path) -> None:
    os.truncate(root / "shard-3.safetensors", 1000)


def _replace(root: Path) -> None:
    target = root / "shard-3.safetensors"
    info = target.stat()
    fresh = root / "fresh.tmp"
    fresh.write_bytes(os.urandom(info.st_size))
    os.utime(fresh, ns=(info.st_atime_ns, info.st_mtime_ns))
    fresh.replace(target)


def _remove(root: Path) -> None:
    (root / "shard-3.safetensors").unlink()


def _add(root: Path) -> None:
    (root / "extra.json").write_bytes(b"{}")


CHANGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "grows": (_grow, "shard-3.safetensors grew during the upload"),
    "shrinks": (_shrink, "shard-3.safetensors shrank during the upload"),
    "is replaced": (_replace, "shard-3.safetensors was replaced during the upload"),
    "is removed": (_remove, "shard-3.safetensors was removed during the upload"),
    "a file is added": (_add, "changed while it was being uploaded (added extra.json)"),
}


@pytest.mark.parametrize("case", CHANGES, ids=list(CHANGES))
async def test_a_folder_that_changes_during_the_upload_stops_it_and_a_rerun_sends_the_new_bytes(
    kore: KoreClient, ctl: EmuControl, big_folder: Path, case: str
) -> None:
    change, message = CHANGES[case]

    def progress(event: ProgressEvent) -> None:
        # Called once the listing is planned and before any chunk is read.
        if event.phase is Phase.UPLOADING and event.chunks_done == 0:
            change(big_folder)

    with pytest.raises(FileChangedError) as caught:
        await kore.models.import_file(big_folder, on_progress=progress)
    assert message in str(caught.value)
    assert str(big_folder) in str(caught.value)
    counters = await ctl.counters()
    assert counters["requests"]["complete"] == 0
    assert counters["requests"]["start"] == 1
    result: ImportResult = await kore.models.import_file(big_folder)
    assert not result.resumed
    size, digest = archive_sha256(big_folder)
    stored = await ctl.model(str(result.model_id))
    assert (stored["size"], stored["sha256"]) == (size, digest)


# ---- lone files ------------------------------------------------------------------------


async def test_a_lone_model_file_is_refused_before_any_request(
    kore: KoreClient, ctl: EmuControl, tmp_path: Path
) -> None:
    weights = write_tree(tmp_path / "m", {"model.safetensors": b"w" * 5000}) / "model.safetensors"
    await ctl.reset_counters()
    with pytest.raises(LocalFileError) as caught:
        await kore.models.import_file(weights)
    message = str(caught.value)
    assert message.startswith(f"{weights}: is a single .safetensors model file")
    assert "--as-tar" in message
    counters = await ctl.counters()
    assert sum(counters["requests"].values()) == 0


async def test_as_tar_sends_a_lone_file_as_a_one_member_tar(
    kore: KoreClient, ctl: EmuControl, tmp_path: Path
) -> None:
    weights = write_tree(tmp_path / "m", {"model.safetensors": os.urandom(100_000)})
    path = weights / "model.safetensors"
    result = await kore.models.import_file(path, as_tar=True)
    stored = await ctl.model(str(result.model_id))
    assert stored["fileName"] == "model.tar"
    exported = await kore.models.export_to_file(str(result.model_id), tmp_path / "out.tar")
    assert await gnu_tar("-tf", str(exported.path)) == "model.safetensors\n"
    out = tmp_path / "x"
    out.mkdir()
    await gnu_tar("-xf", str(exported.path), "-C", str(out))
    assert (out / "model.safetensors").read_bytes() == path.read_bytes()
