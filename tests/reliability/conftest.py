"""Fixtures for reliability tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_support import EmulatorProcess, free_port


@pytest.fixture
def emulator_process(tmp_path: Path) -> Iterator[EmulatorProcess]:
    emulator = EmulatorProcess(tmp_path / "emulator-data", free_port(), "--job-seconds", "0.2")
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.kill()
