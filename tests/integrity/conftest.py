"""Fixtures of the integrity suite: an emulator on loopback, files, and the real ``sha256sum``.

- ``emu``: a running in-process emulator on 127.0.0.1 (jobs finish at once);
  ``ctl``: its control API (:class:`tests.support.transfer.EmuControl`).
- ``clients``: builds ``KoreClient`` objects bound to it (small chunks, no retry sleeps,
  fast polls, ``state_dir=tmp_path/"state"``); closed at teardown.
- ``write_file``: seeded random bytes of an exact size; ``write_tar``: a valid tar of
  an exact size (the emulator's import job accepts it).
"""

from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

FileFactory = Callable[[int], Path]


@pytest.fixture
def write_file(tmp_path: Path) -> FileFactory:
    """Writes a file of seeded random bytes of an exact size; returns its path."""
    folder = tmp_path / "files"
    folder.mkdir()
    count = 0

    def write(size: int) -> Path:
        nonlocal count
        count += 1
        path = folder / f"data-{count}-{size}.bin"
        path.write_bytes(random.Random(size * 31 + count).randbytes(size))
        return path

    return write


@pytest.fixture
def write_tar(tmp_path: Path) -> FileFactory:
    """Writes a valid tar archive of an exact size (>= 1 KiB): one header, random bytes."""
    folder = tmp_path / "archives"
    folder.mkdir()
    count = 0

    def write(size: int) -> Path:
        nonlocal count
        count += 1
        info = tarfile.TarInfo("model/weights.bin")
        info.size = size - 1024
        header = info.tobuf(format=tarfile.USTAR_FORMAT)
        data = header + random.Random(size + count).randbytes(size - len(header))
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            assert archive.next() is not None
        path = folder / f"model-{count}.tar"
        path.write_bytes(data)
        return path

    return write


@pytest.fixture
def sha256sum() -> Callable[[Path], str]:
    """The digest GNU coreutils' ``sha256sum`` prints for a file."""
    tool = shutil.which("sha256sum")
    if tool is None:
        pytest.skip("sha256sum is not installed")

    def run(path: Path) -> str:
        output = subprocess.run([tool, str(path)], check=True, capture_output=True, text=True)
        return output.stdout.split()[0]

    return run


def _readonly_command(target: Path, argv: list[str]) -> list[str]:
    """``argv`` run where ``target`` (a file or folder) is on a read-only mount.

    As root, permissions do not stop writes, so the command runs in its own mount
    namespace (``unshare -m``) with ``target`` bind-mounted read-only: a real read-only
    file system that no other process sees. Otherwise ``chmod`` is enough, and the
    caller makes ``target`` read-only itself.
    """
    if os.geteuid() != 0:
        return argv
    if shutil.which("unshare") is None:
        pytest.skip("unshare is needed to make a read-only mount as root")
    script = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" "$1" && shift && exec "$@"'
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", str(target), "true"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot make a read-only mount here: {probe.stderr.decode().strip()}")
    return ["unshare", "-m", "sh", "-c", script, "sh", str(target), *argv]


ReadonlyCommand = Callable[[Path, list[str]], list[str]]


@pytest.fixture
def readonly_command() -> ReadonlyCommand:
    """Wraps a command so that it runs with a path on a read-only mount (see above)."""
    return _readonly_command
