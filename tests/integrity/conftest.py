"""Fixtures of the integrity suite: files of exact sizes, and the real ``sha256sum``.

Helpers are handed out through fixtures (no test module imports this file).
"""

from __future__ import annotations

import random
import shutil
import subprocess
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
def sha256sum() -> Callable[[Path], str]:
    """The digest GNU coreutils' ``sha256sum`` prints for a file."""
    tool = shutil.which("sha256sum")
    if tool is None:
        pytest.skip("sha256sum is not installed")

    def run(path: Path) -> str:
        output = subprocess.run([tool, str(path)], check=True, capture_output=True, text=True)
        return output.stdout.split()[0]

    return run
