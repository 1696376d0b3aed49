"""The virtual tar: GNU tar and Python's tarfile read back the folder; any slice is exact."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kore_models._body import FileSlice, FileSlicePayload
from kore_models.errors import FileChangedError
from kore_models.transfer.folder import list_folder
from kore_models.transfer.tarstream import BLOCK, TarArchive, TarReader
from tests.support.folders import (
    FIXED_MTIME_NS,
    LONG_DIR,
    LONG_FILE,
    NON_ASCII,
    model_files,
    pin_mtimes,
    snapshot,
    write_tree,
)

GNU_TAR = shutil.which("tar")
needs_gnu_tar = pytest.mark.skipif(GNU_TAR is None, reason="GNU tar is not installed")
EXCLUDED = (".git", "__pycache__")


def whole(archive: TarArchive) -> bytes:
    data = archive.read(0, archive.size)
    assert len(data) == archive.size
    return data


@needs_gnu_tar
def test_gnu_tar_lists_and_extracts_the_same_tree(model_folder: Path, tmp_path: Path) -> None:
    archive = TarArchive(list_folder(model_folder))
    tar_path = tmp_path / "my-model.tar"
    tar_path.write_bytes(whole(archive))
    listed = subprocess.run(
        ["tar", "-tvf", str(tar_path)], capture_output=True, text=True, check=True
    )
    assert listed.stderr == ""
    lines = listed.stdout.splitlines()
    assert len(lines) == len(archive.listing.entries)
    assert all(" 0/0 " in line for line in lines)
    assert any(line.endswith(f" {LONG_DIR}/{LONG_FILE}") for line in lines)
    assert any(line.endswith(f" {NON_ASCII}") for line in lines)
    out = tmp_path / "extracted"
    out.mkdir()
    subprocess.run(["tar", "-xf", str(tar_path), "-C", str(out)], check=True)
    assert snapshot(out) == snapshot(model_folder, skip=EXCLUDED)
    assert not (out / "tokenizer.model").is_symlink()


def test_python_tarfile_reads_every_member_back(model_folder: Path) -> None:
    listing = list_folder(model_folder)
    archive = TarArchive(listing)
    with tarfile.open(fileobj=io.BytesIO(whole(archive)), mode="r:") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == [e.path for e in listing.entries]
        for member, entry in zip(members, listing.entries, strict=True):
            assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
            assert member.mode == entry.mode
            assert member.mtime == FIXED_MTIME_NS // 1_000_000_000
            assert member.isdir() == entry.is_dir
            if not entry.is_dir:
                extracted = tar.extractfile(member)
                assert extracted is not None
                assert extracted.read() == Path(entry.source).read_bytes()
    tail = whole(archive)[-2 * BLOCK :]
    assert tail == bytes(2 * BLOCK)


def test_the_bytes_are_a_function_of_the_listing_alone(tmp_path: Path) -> None:
    files = model_files()
    first = write_tree(tmp_path / "one", files)
    second = write_tree(tmp_path / "two", dict(reversed(list(files.items()))))
    pin_mtimes(first)
    pin_mtimes(second)
    assert whole(TarArchive(list_folder(first))) == whole(TarArchive(list_folder(second)))


def test_the_size_is_known_before_reading(model_folder: Path) -> None:
    listing = list_folder(model_folder)
    archive = TarArchive(listing)
    assert archive.size % BLOCK == 0
    assert archive.size >= listing.content_bytes + BLOCK * (len(listing.entries) + 2)
    assert len(whole(archive)) == archive.size
    assert archive.read(archive.size - 10, 100) == bytes(10)
    assert archive.read(archive.size, 10) == b""


class ArchiveFile(io.RawIOBase):
    """A seekable file object over an archive, so tarfile can skip the data it passes."""

    def __init__(self, archive: TarArchive) -> None:
        self.archive = archive
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.position, 2: self.archive.size}[whence]
        self.position = base + offset
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        with self.archive.open_reader() as reader:
            count = reader.readinto(self.position, memoryview(buffer).cast("B"))
        self.position += count
        return count


def test_sizes_of_8_gib_and_mtimes_before_1970_use_pax_records(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "m", {"a.txt": b"a", "z.txt": b"z"})
    big = root / "huge.safetensors"
    with open(big, "wb") as handle:
        handle.truncate(8 * 1024**3 + 3)  # sparse: no disk used
    os.utime(root / "a.txt", ns=(0, -5_000_000_000))
    archive = TarArchive(list_folder(root))
    with tarfile.open(fileobj=io.BufferedReader(ArchiveFile(archive)), mode="r:") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["huge.safetensors"].size == 8 * 1024**3 + 3
        assert members["a.txt"].mtime == -5
        extracted = tar.extractfile(members["z.txt"])
        assert extracted is not None
        assert extracted.read() == b"z"


# ---- any slice -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[TarArchive, bytes]:
    root = write_tree(
        tmp_path_factory.mktemp("slices") / "m",
        {
            "a": b"",
            "b": os.urandom(511),
            "c/d": os.urandom(512),
            "c/e": os.urandom(513),
            "f": None,
            "\u00e9" * 60: os.urandom(2000),
            "g": os.urandom(70_000),
        },
    )
    archive = TarArchive(list_folder(root))
    return archive, whole(archive)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_slice_equals_the_same_slice_of_the_whole(
    small_archive: tuple[TarArchive, bytes], data: st.DataObject
) -> None:
    archive, expected = small_archive
    offset = data.draw(st.integers(0, archive.size + 10), label="offset")
    length = data.draw(st.integers(0, archive.size + 10), label="length")
    assert archive.read(offset, length) == expected[offset : offset + length]


@settings(max_examples=50, deadline=None)
@given(cuts=st.lists(st.integers(0, 1 << 20), min_size=1, max_size=30))
def test_one_reader_returns_consecutive_ranges_exactly(
    small_archive: tuple[TarArchive, bytes], cuts: list[int]
) -> None:
    archive, expected = small_archive
    ends = sorted({cut % (archive.size + 1) for cut in cuts} | {archive.size})
    collected = bytearray()
    with archive.open_reader() as reader:
        start = 0
        for end in ends:
            buffer = bytearray(end - start)
            assert reader.readinto(start, memoryview(buffer)) == end - start
            collected += buffer
            start = end
    assert bytes(collected) == expected


async def test_readinto_fills_a_view_from_a_worker_thread(
    small_archive: tuple[TarArchive, bytes],
) -> None:
    archive, expected = small_archive
    buffer = bytearray(5000)
    count = await archive.readinto(1000, memoryview(buffer))
    assert count == 5000
    assert bytes(buffer) == expected[1000:6000]


# ---- a folder that changes after it was listed -------------------------------------------


@pytest.fixture
def listed(tmp_path: Path) -> tuple[Path, TarArchive]:
    root = write_tree(tmp_path / "m", {"a.bin": os.urandom(10_000), "b.bin": os.urandom(10_000)})
    return root, TarArchive(list_folder(root))


def change(root: Path, how: str) -> None:
    target = root / "b.bin"
    info = target.stat()
    if how == "grows":
        with open(target, "ab") as handle:
            handle.write(b"more")
    elif how == "shrinks":
        os.truncate(target, 5000)
    elif how == "is replaced":
        replacement = root / "b.new"
        replacement.write_bytes(os.urandom(10_000))
        os.utime(replacement, ns=(info.st_atime_ns, info.st_mtime_ns))
        replacement.replace(target)
    elif how == "is edited":
        with open(target, "r+b") as handle:
            handle.write(b"edit")
        os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns + 1))
    else:
        target.unlink()


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("grows", "grew during the upload (10000 -> 10004 bytes)"),
        ("shrinks", "shrank during the upload (10000 -> 5000 bytes)"),
        ("is replaced", "was replaced during the upload"),
        ("is edited", "was modified during the upload"),
        ("is removed", "was removed during the upload"),
    ],
)
def test_a_member_that_changed_stops_the_read(
    listed: tuple[Path, TarArchive], how: str, message: str
) -> None:
    root, archive = listed
    untouched = archive.read(0, 11_000)
    change(root, how)
    assert archive.read(0, 11_000) == untouched  # a.bin and b.bin's header are still fine
    with pytest.raises(FileChangedError) as caught:
        archive.read(0, archive.size)
    assert str(caught.value) == f"{root}/b.bin {message}; the import was stopped"


def test_a_file_truncated_while_open_is_caught_by_the_short_read(
    listed: tuple[Path, TarArchive],
) -> None:
    root, archive = listed
    b_data = archive.listing.entries[1]
    with archive.open_reader() as reader:
        start = BLOCK + 10_240 + BLOCK  # a.bin's header and padded data, then b.bin's header
        head = bytearray(100)
        reader.readinto(start, memoryview(head))
        assert bytes(head) == Path(b_data.source).read_bytes()[:100]
        os.truncate(root / "b.bin", 200)
        with pytest.raises(FileChangedError, match=r"b.bin shrank during the upload \(it ends"):
            reader.readinto(start + 100, memoryview(bytearray(1000)))


async def test_a_chunk_payload_over_the_archive_gives_the_same_bytes(
    small_archive: tuple[TarArchive, bytes],
) -> None:
    archive, expected = small_archive
    part = FileSlice(Path("m"), 700, 5000, source=archive)
    payload = FileSlicePayload(part, block_size=1024, stall_timeout=5)
    assert await payload.as_bytes() == expected[700:5700]
    written = bytearray()

    class Sink:
        async def write(self, data: bytes | memoryview) -> None:
            written.extend(data)

    await payload.write(Sink())  # type: ignore[arg-type]
    assert bytes(written) == expected[700:5700]
    assert payload.bytes_sent == 5000


def test_closing_a_reader_while_a_read_runs_closes_the_file_after_it(
    listed: tuple[Path, TarArchive],
) -> None:
    _, archive = listed
    inside, release = threading.Event(), threading.Event()

    class PausingReader(TarReader):
        """Pauses after its file is open, as a slow disk read would."""

        def _read_file(self, member: Any, offset: int, target: memoryview) -> None:
            super()._read_file(member, offset, target)
            inside.set()
            assert release.wait(10)

    reader = PausingReader(archive)
    worker = threading.Thread(target=reader.readinto, args=(BLOCK, memoryview(bytearray(100))))
    worker.start()
    assert inside.wait(10)
    fd = reader._fd
    reader.close()
    os.fstat(fd)  # still open: the read in the other thread owns it until it returns
    release.set()
    worker.join(10)
    with pytest.raises(OSError, match="Bad file descriptor"):
        os.fstat(fd)
